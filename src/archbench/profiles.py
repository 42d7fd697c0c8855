"""Install the repository's Snakemake profiles where `snakemake --profile NAME` finds them.

Snakemake resolves a bare profile name only in `$XDG_CONFIG_HOME/snakemake/` (default
`~/.config/snakemake/`) and `/etc/xdg/snakemake/`, never in `./profiles/`. A symlink (not a copy)
keeps the installed profile in step with the repository.

The profiles belong to the workflow (Snakefile, rules/, profiles/), not to the package: they are read
from `profiles/` in the current directory, the checkout you run `snakemake --profile profiles/slurm`
from, so an installed wheel links the same folder that command names.
"""

from __future__ import annotations

import os
from pathlib import Path

from archbench.errors import ArchbenchError

PROFILES = Path("profiles")  # relative to the current directory: the workflow checkout


class ProfileInstallError(ArchbenchError):
    """The destination holds something else: we never overwrite a user's profile."""


def user_profile_dir() -> Path:
    """`$XDG_CONFIG_HOME/snakemake`, or `~/.config/snakemake` (where Snakemake looks)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "snakemake"


def install_profile(
    name: str = "slurm", dest: str | os.PathLike | None = None, source: str | os.PathLike | None = None
) -> Path:
    """Link `profiles/<name>` of the current directory (or `source`) to `dest` (default
    `user_profile_dir()/<name>`) and return `dest`.

    Idempotent: a link that already points at the profile is left alone. Anything else at `dest`
    (another profile, a link elsewhere) raises ProfileInstallError naming both paths.
    """
    src = Path(source) if source is not None else PROFILES.resolve() / name
    if not (src / "config.yaml").is_file() and not (src / "profile.yaml").is_file():
        folder = src.parent
        available = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        raise ProfileInstallError(
            f"no profile {name!r} in {folder} (available: {', '.join(available) or 'none'}; "
            "run this from the repository root)"
        )
    src = src.resolve()
    dest = Path(dest) if dest is not None else user_profile_dir() / name
    if dest.is_symlink() or dest.exists():
        if dest.resolve() == src:
            return dest
        raise ProfileInstallError(
            f"{dest} already exists and is not a link to {src}; remove it, or install under another "
            f"name (then use `snakemake --profile <name>`)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(src, target_is_directory=True)
    return dest
