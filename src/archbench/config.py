"""Config validation and the hyperparameter grid.

`validate_config` is called by the Snakefile at parse time: the JSON schema (config/schema.yaml, through
`snakemake.utils.validate`) fills defaults and checks types and ranges; then the architecture names are
checked against the registry, the model cross-key rules (archbench.models.constraints, the functions the
model config classes run) for every architecture at every grid point, and the pipeline's own cross-key
rules (splits, data source). Every failure is one `ConfigError` whose message starts with the offending key.
"""

from __future__ import annotations

import functools
import glob
import itertools
import math
import os
import re
from pathlib import Path

import jsonschema
import yaml

from archbench.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
CORE_GRID_KEYS = ("learning_rate", "embed_dim", "ffn_dim", "heads", "seq_len")
# Sections whose scalar settings may also be searched over (or overridden) in `grid`.
GRID_SECTIONS = ("model", "training")
LIST_SETTINGS = ("betas", "segment_lengths", "dilated_ratios")
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def load_schema(path: str | os.PathLike | None = None) -> dict:
    """The parsed schema (cached: parsing it takes ~0.1 s; callers only read it)."""
    return _load_schema(os.fspath(path or SCHEMA_PATH))


@functools.lru_cache(maxsize=4)
def _load_schema(path: str) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<config>"


def _describe(err: jsonschema.ValidationError) -> str:
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))[0]
        key = f"{key}.{extra}" if err.absolute_path else extra
        allowed = ", ".join(err.schema.get("properties", {}))
        return f"config key '{key}': unknown key (allowed here: {allowed})"
    msg = f"config key '{key}': {err.message}"
    if isinstance(err.instance, str) and _FLOAT_STRING.match(err.instance):
        msg += f" (YAML reads {err.instance} as a string: write it with a dot, e.g. {float(err.instance):.1e})"
    return msg


def _schema_validate(instance: dict, schema_path) -> None:
    """Types, ranges and defaults: snakemake's validator (jsonschema with defaults filled in place).
    It raises a WorkflowError whose text dumps the schema; the jsonschema error it wraps (its
    ``__context__``) gives the one-line message that names the key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(instance, os.fspath(schema_path), set_default=True)
    except WorkflowError as err:
        cause = err.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise ConfigError(_describe(cause)) from None


def validate_config(config: dict, schema_path=None) -> dict:
    """Fill defaults and check `config` in place; raise ConfigError naming the key on any problem."""
    schema_path = schema_path or SCHEMA_PATH
    _schema_validate(config, schema_path)
    schema = load_schema(schema_path)
    _check_archs(config)
    _check_grid_keys(config, schema)
    _check_splits(config["splits"])
    check_models(config)
    _check_data(config["data"])
    if config["data"]["source"] == "mqar":  # issue 15 hook: MQAR's cross-key rules live with its generator
        from archbench.data.mqar import check_config

        check_config(config)
    return config


def _check_grid_keys(config: dict, schema: dict) -> None:
    for key, values in config["grid"].items():
        if key in CORE_GRID_KEYS:
            continue
        section = next((s for s in GRID_SECTIONS if key in schema["properties"][s]["properties"]), None)
        if section is None:
            allowed = sorted(set(CORE_GRID_KEYS).union(*(schema["properties"][s]["properties"] for s in GRID_SECTIONS)))
            raise ConfigError(f"config key 'grid.{key}': unknown hyperparameter (allowed: {', '.join(allowed)})")
        sub = schema["properties"][section]["properties"][key]
        if _is_axis(key, values) and not values:
            raise ConfigError(f"config key 'grid.{key}': empty list (give at least one value)")
        for i, value in enumerate(values if _is_axis(key, values) else [values]):
            try:
                jsonschema.validate(value, sub)
            except jsonschema.ValidationError as err:
                where = f"grid.{key}" + (f"[{i}]" if _is_axis(key, values) else "")
                raise ConfigError(f"config key '{where}': {err.message}") from None


def _check_splits(splits: dict) -> None:
    total = sum(splits.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        parts = " + ".join(f"{k} {v}" for k, v in splits.items())
        raise ConfigError(f"config key 'splits': ratios must sum to 1, got {parts} = {total:g}")


def _check_archs(config: dict) -> None:
    from archbench.models.hf import normalise
    from archbench.models.registry import ARCHS, arch_names

    known = arch_names()
    hint = "or hf-<model_type> for a causal LM of transformers"
    config["archs"] = [normalise(a) for a in config["archs"]]  # hf:<type> -> hf-<type>, the path-safe spelling
    for i, arch in enumerate(config["archs"]):
        if arch not in ARCHS:  # resolves (and registers) hf-<type> names
            raise ConfigError(
                f"config key 'archs[{i}]': {arch!r} is not one of {known} (the architectures of "
                f"archbench.models.registry), {hint}"
            )
    for section, key in (("report", "baseline"), ("model", "match_to")):
        value = config[section][key] = normalise(config[section][key])
        if value not in ARCHS:  # architecture names (no schema enum: plugins add names)
            raise ConfigError(f"config key '{section}.{key}': {value!r} is not one of {known}, {hint}")


def check_models(config: dict) -> None:
    """The model cross-key rules (models/constraints.py, named by each registry entry) for every
    architecture in `archs` at every grid point: the checks the model config classes run in every job."""
    from archbench.models.constraints import ConstraintError
    from archbench.models.registry import get_arch

    checks = [(arch, get_arch(arch).check()) for arch in config["archs"]]
    for point in grid_points(config):
        settings = run_settings(config, point)
        settings["max_seq_len"] = settings["seq_len"]  # what training passes to the model config
        for arch, check in checks:
            try:
                check and check(settings)
            except ConstraintError as err:
                keys = [_config_key(config, "seq_len" if k == "max_seq_len" else k) for k in err.keys]
                raise ConfigError(
                    f"config key{'s' * (len(keys) > 1)} {'/'.join(map(repr, keys))}: {err} (arch {arch})"
                ) from None


def _config_key(config: dict, name: str) -> str:
    """Where a flat setting is written: the grid, else its section."""
    if name in config["grid"]:
        return f"grid.{name}"
    section = next((s for s in GRID_SECTIONS if name in config[s]), None)
    return f"{section}.{name}" if section else name


def _check_data(data: dict) -> None:
    if data["source"] == "local":
        path = data.get("path")
        if not path:
            raise ConfigError("config key 'data.path': required when data.source is local")
        if not (os.path.exists(path) or glob.glob(path, recursive=True)):
            raise ConfigError(
                f"config key 'data.path': '{path}' does not exist (relative paths are read from {os.getcwd()})"
            )
    elif data["source"] == "hub" and not data["hub"].get("name"):
        raise ConfigError("config key 'data.hub.name': required when data.source is hub (e.g. allenai/c4)")


def _is_axis(key: str, value) -> bool:
    """A grid entry is searched over when it is a list (of lists, for list-valued settings)."""
    if key in LIST_SETTINGS:
        return isinstance(value, list) and all(isinstance(v, list) for v in value)
    return isinstance(value, list)


def grid_axes(config: dict) -> dict[str, list]:
    """The searched axes, in config order."""
    return {k: v for k, v in config["grid"].items() if _is_axis(k, v)}


def grid_points(config: dict) -> list[dict]:
    axes = grid_axes(config)
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def run_settings(config: dict, point: dict) -> dict:
    """Flat model + training settings of one grid point: fixed sections, then grid scalars, then the point."""
    fixed = {k: v for k, v in config["grid"].items() if not _is_axis(k, v)}
    settings = {**config["model"], **config["training"], **fixed, **point}
    data = config.get("data") or {}
    if data.get("source") == "mqar" and data["mqar"].get("loss", "answers") == "answers":
        from archbench.data.mqar import key_ids

        settings["answer_keys"] = key_ids(data["mqar"]["vocab_size"])  # loss on query answers only
    return settings
