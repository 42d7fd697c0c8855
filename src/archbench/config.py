"""Config validation and the hyperparameter grid.

`validate_config` is called by the Snakefile at parse time: the JSON schema (config/schema.yaml) fills
defaults and checks types/ranges, then the cross-key rules the schema cannot express are checked here.
Every failure is one `ConfigError` whose message starts with the offending key.
"""

from __future__ import annotations

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
    with open(path or SCHEMA_PATH) as fh:
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


def _schema_validate(instance: dict, schema: dict) -> None:
    """Validate and fill schema defaults in place (the same extension snakemake.utils.validate uses)."""
    base = jsonschema.Draft202012Validator
    props = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, inst, sch):
        if isinstance(inst, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    inst.setdefault(name, _copy(sub["default"]))
        yield from props(validator, properties, inst, sch)

    validator = jsonschema.validators.extend(base, {"properties": set_defaults})(schema)
    errors = list(validator.iter_errors(instance))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value)) if isinstance(value, (dict, list)) else value


def validate_config(config: dict, schema_path=None) -> dict:
    """Fill defaults and check `config` in place; raise ConfigError naming the key on any problem."""
    schema = load_schema(schema_path)
    _schema_validate(config, schema)
    _check_grid_keys(config, schema)
    _check_splits(config["splits"])
    _check_dims(config)
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
            allowed = sorted(set(CORE_GRID_KEYS).union(
                *(schema["properties"][s]["properties"] for s in GRID_SECTIONS)))
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


def _check_dims(config: dict) -> None:
    value_dim = config["model"].get("value_embed_dim")
    for point in grid_points(config):
        settings = {**config["model"], **point}
        embed, heads = settings["embed_dim"], settings["heads"]
        if embed % heads:
            raise ConfigError(f"config keys 'grid.embed_dim'/'grid.heads': embed_dim {embed} is not divisible by heads {heads}")
        if "retnet" in config["archs"]:
            if (embed // heads) % 2:
                raise ConfigError(f"config keys 'grid.embed_dim'/'grid.heads': RetNet needs an even head dimension, got {embed}/{heads} = {embed // heads}")
            vdim = settings.get("value_embed_dim") or value_dim or 2 * embed
            if vdim % heads:
                raise ConfigError(f"config key 'model.value_embed_dim': {vdim} is not divisible by heads {heads}")
        if settings["seq_len"] > 1_048_576:
            raise ConfigError(f"config key 'grid.seq_len': {settings['seq_len']} is too large")


def _check_data(data: dict) -> None:
    if data["source"] == "local":
        path = data.get("path")
        if not path:
            raise ConfigError("config key 'data.path': required when data.source is local")
        if not (os.path.exists(path) or glob.glob(path, recursive=True)):
            raise ConfigError(f"config key 'data.path': '{path}' does not exist (relative paths are read from {os.getcwd()})")
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
    return {**config["model"], **config["training"], **fixed, **point}
