"""User-facing errors: raised for bad configs or bad data, printed as one line without a traceback."""


class ArchbenchError(Exception):
    """Base class for errors caused by the user's input (config, data, environment)."""


class ConfigError(ArchbenchError):
    """A config value is wrong; the message names the key."""


class DataError(ArchbenchError):
    """The corpus or a derived data file is unusable; the message names the file/column."""
