"""Config validation and the hyperparameter grid.

`validate_config` is called by the Snakefile at parse time: the JSON schema (:func:`load_schema`: the
package's schema.yaml plus the fragment of every registered architecture, data source and evaluation)
fills defaults and checks types and ranges; then the architecture names are
checked against the registry, the model cross-key rules (archbench.models.constraints, the functions the
model config classes run) for every architecture at every grid point, and the pipeline's own cross-key
rules (splits, data source, path parts). Every failure is one `ConfigError` whose message starts with the
offending key. Before all that, sizes are bounded (the config as its YAML aliases expand, the number of
runs the grid plans), and afterwards values the schema cannot express are refused: NaN and infinities,
floats for integer keys, duplicates after normalisation, a `results` folder that is unsafe to write
(docs/safety.md lists them).

`--config key=value` gives nested values as strings (Snakemake parses them with YAML's BaseLoader:
`training='{batch_size: 8}'` is `{"batch_size": "8"}`), so before validation every string of those
overrides where the schema wants a number, boolean, null or list is read as YAML (`coerce`); a string
written in a config file stays an error (it is a typo there, e.g. a quoted number).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import re
from pathlib import Path

import jsonschema
import yaml

from archbench.data.sources import SOURCES, source_of
from archbench.errors import ConfigError
from archbench.evaluation.registry import EVALUATIONS
from archbench.grid import grid_axes, grid_points, is_axis
from archbench.models.registry import ARCHS

# The base schema: every key no component owns. It ships inside the package (a wheel has no config/).
SCHEMA_PATH = Path(__file__).with_name("schema.yaml")
CORE_GRID_KEYS = ("learning_rate", "embed_dim", "ffn_dim", "heads", "seq_len")
# Sections whose scalar settings may also be searched over (or overridden) in `grid`.
GRID_SECTIONS = ("model", "training")
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
# A config value that becomes part of an output path (a grid value in a run folder's name, an
# architecture name): no separators, no `..` or hidden names, nothing Paramspace splits on (`~`).
SAFE_PATH_PART = re.compile(r"^(?!\.)[A-Za-z0-9._+\-\[\], ]+$")
_YAML_TYPES = {
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
    "array": list,
    "object": dict,
}


def load_schema(path: str | os.PathLike | None = None) -> dict:
    """The composed schema: the base file (default: the package's schema.yaml) plus the `schema_fragment`
    of every registered architecture (into `model`), data source `<name>` (into `data.<name>`) and
    evaluation (into its `schema_section`, default its name), entry-point plugins included. A fresh copy
    on every call: validation fills defaults into the config by reference to the schema's objects."""
    schema = copy.deepcopy(_load_base(os.fspath(path or SCHEMA_PATH)))
    owners: dict[tuple, str] = {}
    for owner, section, fragment in _fragments():
        _merge(schema, owners, owner, section, fragment)
    return schema


@functools.lru_cache(maxsize=4)
def _load_base(path: str) -> dict:
    with open(path) as fh:  # parsing takes ~0.1 s; callers get copies
        return yaml.safe_load(fh)


def _fragments():
    """(owner, section path, fragment) of every registry entry that carries a fragment. Registered
    architectures only: an hf-<model_type> entry is built when a config names it, so the schema would
    depend on the config it checks."""
    for name, arch in ARCHS.items():
        yield f"architecture {name!r}", ("model",), getattr(arch, "schema_fragment", None)
    for name, source in SOURCES.items():
        yield f"data source {name!r}", ("data", name), getattr(source, "schema_fragment", None)
    for name, evaluation in EVALUATIONS.items():
        section = getattr(evaluation, "schema_section", None) or name
        yield f"evaluation {name!r}", tuple(section.split(".")), getattr(evaluation, "schema_fragment", None)


def _merge(schema: dict, owners: dict, owner: str, section: tuple, fragment) -> None:
    """Add `fragment` (a properties mapping) to the object schema at `section`, created if absent; a key
    the base or another fragment defines already is refused, naming both. Entries that share one setting
    (e.g. two architectures reading `position`) name the same schema object: defined once, not twice."""
    if fragment is None:
        return
    if not isinstance(fragment, dict) or not all(isinstance(v, dict) for v in fragment.values()):
        raise ConfigError(f"{owner}: schema_fragment must map each key to its JSON schema, got {fragment!r}")
    node = schema
    for depth, part in enumerate(section):
        props = node.setdefault("properties", {})
        if part not in props:
            props[part] = {"type": "object", "default": {}, "additionalProperties": False, "properties": {}}
            owners[section[: depth + 1]] = (owner, None)
        node = props[part]
    props = node.setdefault("properties", {})
    for key, sub in fragment.items():
        where = (*section, key)
        first, defined = owners.get(where, (f"the base schema ({SCHEMA_PATH.name})", None))
        if key in props and sub is defined:
            continue
        if key in props:
            raise ConfigError(f"config key '{'.'.join(where)}': defined by both {first} and {owner}")
        props[key] = copy.deepcopy(sub)
        owners[where] = (owner, sub)


def schema_defaults() -> dict:
    """The pipeline config of an empty config file (every key at its schema default, fragments
    included): what the CLI's options start from, for the built-in evaluations and a plugin's alike."""
    return _defaults({"properties": load_schema()["properties"]})


def _defaults(prop: dict):
    """A schema object's defaults, nested objects filled in (``data.mqar``'s keys)."""
    if "properties" not in prop:
        return prop.get("default")
    return {k: _defaults(v) for k, v in prop["properties"].items()}


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


def _fill_defaults(validator, properties, instance, schema):
    # jsonschema's documented recipe, as snakemake.utils.validate(set_default=True) applies it: a missing
    # key gets its default before its value is checked (so nested objects get theirs too).
    if isinstance(instance, dict):
        for key, sub in properties.items():
            if "default" in sub:
                instance.setdefault(key, sub["default"])
    yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


# snakemake.utils.validate reads its schema from a file; the composed schema is a dict, so the same
# defaults-filling validator is built here.
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": _fill_defaults})


def _schema_validate(instance: dict, schema: dict) -> None:
    """Types, ranges and defaults (filled in place); the first error as one line naming the key."""
    try:
        _Validator(schema).validate(instance)
    except jsonschema.ValidationError as err:
        raise ConfigError(_describe(err)) from None


def validate_config(config: dict, schema_path=None, overrides: dict | None = None) -> dict:
    """Fill defaults and check `config` in place; raise ConfigError naming the key on any problem.
    `schema_path`: another base schema file (default the package's; fragments are added to it).
    `overrides`: the `--config` values (Snakemake's `workflow.config_settings.config`), read by type.
    Sizes first (the expanded YAML, the grid), before anything walks, copies or expands the config."""
    schema = load_schema(schema_path)
    check_config_size(config)
    check_grid_size(config)
    if overrides:
        config.update(coerce(config, schema, only=overrides))
    check_numbers(config, schema)
    _schema_validate(config, schema)
    _check_results(config)
    _check_archs(config)
    _check_grid_keys(config, schema, (overrides or {}).get("grid") or {})
    _check_path_parts(config)
    _check_grid_duplicates(config)
    _check_splits(config["splits"])
    check_models(config)
    _check_data(config)
    _check_retrieval(config)
    return config


def check_plain_yaml(paths) -> None:
    """Refuse a config file that asks Snakemake to render it with YTE (a true top-level `__use_yte__`,
    in block or flow style): YTE evaluates the Python expressions in the file. Snakemake renders
    --configfile files before the workflow is read, so their code has already run when this refuses."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue  # Snakemake itself reports a missing config file
        if "__use_yte__" not in text:
            continue
        with contextlib.suppress(yaml.YAMLError):
            doc = yaml.safe_load(text)  # only files that name the key are parsed a second time
            if not (isinstance(doc, dict) and doc.get("__use_yte__")):
                continue
        raise ConfigError(
            f"config file '{path}': '__use_yte__' makes Snakemake evaluate the Python in it (YTE templates); "
            "archbench configs are plain YAML: remove the key (see docs/safety.md, What runs code)"
        )


def _types(schema: dict) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _scalar(text: str, types: list[str]):
    """`text` as the first schema type it reads as (YAML 1.1, plus 1e-3 style floats), else unchanged."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and "number" in types:
        with contextlib.suppress(ValueError):
            value = float(text)
    for kind in types:
        wanted = _YAML_TYPES.get(kind)
        if wanted and isinstance(value, wanted) and not (kind in ("integer", "number") and isinstance(value, bool)):
            return value
    return text


def coerce(value, schema: dict, only=None):
    """`value` with every string that the schema wants as another type read as YAML (recursively);
    with `only` (a nested dict), only at the keys it has."""
    if isinstance(only, dict) and isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {
            k: coerce(v, props.get(k, extra if isinstance(extra, dict) else {}), only[k]) if k in only else v
            for k, v in value.items()
        }
    types = _types(schema)
    if isinstance(value, str) and types and "string" not in types:
        value = _scalar(value, types)
    elif isinstance(value, str) and "string" in types and len(types) > 1:
        parsed = _scalar(value, [t for t in types if t != "string"])  # devices: "4" -> 4, "auto" stays
        value = parsed if not isinstance(parsed, str) else value
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {k: coerce(v, props.get(k, extra if isinstance(extra, dict) else {})) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce(v, schema["items"]) for v in value]
    return value


def _check_grid_keys(config: dict, schema: dict, overridden: dict) -> None:
    for key, values in config["grid"].items():
        if key in CORE_GRID_KEYS:
            continue
        section = next((s for s in GRID_SECTIONS if key in schema["properties"][s]["properties"]), None)
        if section is None:
            allowed = sorted(set(CORE_GRID_KEYS).union(*(schema["properties"][s]["properties"] for s in GRID_SECTIONS)))
            raise ConfigError(f"config key 'grid.{key}': unknown hyperparameter (allowed: {', '.join(allowed)})")
        sub = schema["properties"][section]["properties"][key]
        if key in overridden:  # --config: read the strings by the setting's type
            if isinstance(values, list) and is_axis(key, [coerce(v, sub) for v in values]):
                values = config["grid"][key] = [coerce(v, sub) for v in values]
            else:
                values = config["grid"][key] = coerce(values, sub)
        if is_axis(key, values) and not values:
            raise ConfigError(f"config key 'grid.{key}': empty list (give at least one value)")
        for i, value in enumerate(values if is_axis(key, values) else [values]):
            where = f"grid.{key}" + (f"[{i}]" if is_axis(key, values) else "")
            _check_number(value, sub, ["grid", key, i] if is_axis(key, values) else ["grid", key])  # after coerce
            if is_axis(key, values):  # a path-escaping value is named as such, whatever else is wrong with it
                _check_path_part(where, value)
            try:
                jsonschema.validate(value, sub)
            except jsonschema.ValidationError as err:
                raise ConfigError(f"config key '{where}': {err.message}") from None


# A YAML alias is a reference: a 1 KB file of nested aliases ("billion laughs") loads as a small object
# that expands to 10^9 values as soon as anything copies, walks or prints it (Snakemake dumps the config
# as JSON before the first job). Real configs have hundreds of values; the largest grids some 10^4.
MAX_CONFIG_VALUES = 1_000_000
# Training runs (architectures x grid points x seeds) one config may plan: Snakemake builds every
# job of the DAG in memory (several per run), so 10^5 grid points would exhaust memory
# long before a job ran. Split a larger search into several configs (their own `results`).
MAX_RUNS = 10_000
_GLOB_OR_WILDCARD = "{}*?[]"


def check_config_size(config: dict) -> int:
    """The number of values in `config` as if every YAML alias were copied, counted once per distinct
    object (so in time proportional to the file, not to the expansion); refused above
    MAX_CONFIG_VALUES, and when an alias refers to itself (a config that never ends)."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def count(value, path) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        ident = id(value)
        if ident in sizes:
            return sizes[ident]
        if ident in busy:
            raise ConfigError(f"config key '{_key(path)}': contains itself (a YAML alias inside its own anchor)")
        busy.add(ident)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        total = 1
        for k, v in items:
            total += count(v, [*path, k])
            if total > MAX_CONFIG_VALUES:
                break
        busy.discard(ident)
        sizes[ident] = total = min(total, MAX_CONFIG_VALUES + 1)
        return total

    total = count(config, [])
    if total > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"config: more than {MAX_CONFIG_VALUES:,} values once its YAML aliases (*name) are expanded "
            "(archbench.config.MAX_CONFIG_VALUES); a config this large is refused before it is copied"
        )
    return total


def check_grid_size(config: dict) -> int:
    """Training runs the config plans (architectures x grid points x seeds), from the lengths of its
    lists, before the grid is expanded; refused above MAX_RUNS with the count."""
    grid = config.get("grid")
    archs, seeds = config.get("archs", [None]), config.get("seeds", [None])
    if not isinstance(grid, dict):
        return 0
    axes = [len(v) for k, v in grid.items() if is_axis(k, v)]
    points = math.prod(axes)
    n_archs, n_seeds = (len(v) if isinstance(v, list) else 1 for v in (archs, seeds))
    runs = points * n_archs * n_seeds
    if runs > MAX_RUNS:
        shape = " x ".join(map(str, axes)) or "1"
        raise ConfigError(
            f"config key 'grid': {points:,} grid points ({shape}) x {n_archs} architecture(s) x "
            f"{n_seeds} seed(s) = {runs:,} training runs, above the limit of {MAX_RUNS:,} "
            "(archbench.config.MAX_RUNS): split the search into several configs"
        )
    return runs


def _subschema(schema: dict, key) -> dict:
    if isinstance(key, int):
        items = schema.get("items")
        return items if isinstance(items, dict) else {}
    props, extra = schema.get("properties", {}), schema.get("additionalProperties")
    return props.get(key, extra if isinstance(extra, dict) else {})


def _check_number(value, schema: dict, path) -> None:
    if isinstance(value, float):
        key = _key(path)
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}': {value} is not a finite number (NaN and infinities are refused)")
        types = _types(schema)
        if "integer" in types and "number" not in types:
            hint = f" (write {int(value)})" if value.is_integer() else ""
            raise ConfigError(f"config key '{key}': {value!r} is not an integer{hint}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_number(v, _subschema(schema, k), [*path, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_number(v, _subschema(schema, i), [*path, i])


def check_numbers(config: dict, schema: dict) -> None:
    """NaN and infinities anywhere (JSON schema's minimum / maximum let NaN through: every comparison
    with it is false), and floats where the schema wants an integer (JSON schema accepts 32.0)."""
    grid = config.get("grid")
    _check_number({k: v for k, v in config.items() if k != "grid"}, schema, [])
    if not isinstance(grid, dict):
        return
    props = schema["properties"]
    for key, values in grid.items():
        if key in CORE_GRID_KEYS:
            sub = props["grid"]["properties"][key].get("items", {})
        else:
            section = next((s for s in GRID_SECTIONS if key in props[s]["properties"]), None)
            sub = props[section]["properties"][key] if section else {}
        if is_axis(key, values):
            for i, v in enumerate(values):
                _check_number(v, sub, ["grid", key, i])
        else:
            _check_number(values, sub, ["grid", key])


def _check_results(config: dict) -> None:
    """`results` names a folder of its own: not the filesystem root, no Snakemake wildcards or glob
    characters, not a file, writable, and apart from the corpus (`data.path`)."""
    results = config["results"]
    if not results.strip():
        raise ConfigError(
            "config key 'results': empty (outputs would be written at the filesystem root); give a folder"
        )
    if bad := sorted(set(results) & set(_GLOB_OR_WILDCARD)):
        raise ConfigError(
            f"config key 'results': {results!r} contains {' '.join(bad)} (Snakemake reads braces as wildcards, "
            "the others are glob patterns); give a plain folder name"
        )
    folder = Path(os.path.abspath(results))
    if folder == Path(folder.anchor):
        raise ConfigError(f"config key 'results': {results!r} is the filesystem root; give a folder of its own")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"config key 'results': {results!r} is a file, not a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" (its nearest existing folder, '{existing}', is not writable)"
        raise ConfigError(f"config key 'results': {results!r} cannot be written{where}")
    corpus = (config.get("data") or {}).get("path")
    if corpus:
        _check_apart(folder, results, corpus)


def _check_apart(folder: Path, results: str, corpus: str) -> None:
    """The corpus (its folder, up to the first glob part) and `results` may not contain each other:
    the pipeline would read its own outputs as documents, or write into the corpus."""
    parts = Path(os.path.abspath(corpus)).parts
    # An existing path is literal, as the readers take it (a folder named 'brack[1]' is no glob)
    exists = os.path.exists(corpus)
    plain = len(parts) if exists else next((i for i, p in enumerate(parts) if set(p) & set("*?[")), len(parts))
    root = Path(*parts[:plain]).resolve()
    out = folder.resolve()
    if out == root or out.is_relative_to(root):
        raise ConfigError(
            f"config key 'results': {results!r} is inside data.path {corpus!r}: the corpus would include "
            "the pipeline's own outputs; put results outside the corpus folder"
        )
    if root.is_relative_to(out):
        raise ConfigError(
            f"config key 'data.path': {corpus!r} is inside results {results!r}: the pipeline would read its "
            "own outputs as documents; keep the corpus outside the results folder"
        )


def _check_path_parts(config: dict) -> None:
    """Every value that names an output folder: grid axes' values (run folders) and architectures."""
    parts = [(f"archs[{i}]", arch) for i, arch in enumerate(config["archs"])]
    for key, values in grid_axes(config).items():
        parts += [(f"grid.{key}[{i}]", value) for i, value in enumerate(values)]
    for key, value in parts:
        _check_path_part(key, value)


def _check_path_part(key: str, value) -> None:
    if not SAFE_PATH_PART.match(str(value)):
        raise ConfigError(
            f"config key '{key}': {value!r} becomes part of an output folder's name and may only contain "
            "letters, digits, '.', '_', '+', '-', '[', ']', ',' and spaces (not first: '.')"
        )


def _check_grid_duplicates(config: dict) -> None:
    """Two values of one axis that name the same run folder (1 and '1': devices~1) or are equal
    (0 and 0.0) would be two runs of one setting."""
    for key, values in grid_axes(config).items():
        seen: list = []
        for i, value in enumerate(values):
            j = next((j for j, v in enumerate(seen) if str(v) == str(value) or _same(v, value)), None)
            if j is not None:
                raise ConfigError(
                    f"config key 'grid.{key}[{i}]': {value!r} is the same value as grid.{key}[{j}] ({seen[j]!r}); "
                    "give each value once"
                )
            seen.append(value)


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


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
    given = list(config["archs"])
    config["archs"] = [normalise(a) for a in config["archs"]]  # hf:<type> -> hf-<type>, the path-safe spelling
    for i, arch in enumerate(config["archs"]):
        if (j := config["archs"].index(arch)) < i:
            raise ConfigError(
                f"config key 'archs[{i}]': {given[i]!r} is the same architecture as archs[{j}] ({given[j]!r}); "
                "give each once"
            )
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
    model = config["model"]
    if model.get("match") == "flops":  # compute matching turns the width knob against the registry's formulas
        if model.get("match_by") == "layers":
            raise ConfigError("config key 'model.match': flops turns the width knob; model.match_by must be width")
        lacking = [a for a in dict.fromkeys([*config["archs"], model["match_to"]]) if not get_arch(a).flops]
        if lacking:
            raise ConfigError(f"config key 'model.match': flops needs a FLOPs formula; {', '.join(lacking)} has none")
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


def _check_data(config: dict) -> None:
    """The data source's own rules (archbench.data.sources: each source checks its keys)."""
    source_of(config["data"]).check_config(
        config["data"], [run_settings(config, point, with_source=False) for point in grid_points(config)]
    )


def _check_retrieval(config: dict) -> None:
    """Rule retrieval builds its tasks from the MQAR vocabulary: asked for, it needs a source with it."""
    data = config["data"]
    if config["retrieval"]["enabled"] and not source_of(data).answer_positions:
        raise ConfigError(
            f"config key 'retrieval.enabled': the retrieval tasks are built on the MQAR vocabulary and need "
            f"data.source: mqar (config/presets/retrieval.yaml); got data.source {data['source']!r}"
        )


def run_settings(config: dict, point: dict, with_source: bool = True) -> dict:
    """Flat model + training settings of one grid point: fixed sections, then grid scalars, then the point,
    then what the data source adds to every run (its training-target hook's settings)."""
    fixed = {k: v for k, v in config["grid"].items() if not is_axis(k, v)}
    settings = {**config["model"], **config["training"], **fixed, **point}
    if with_source and config.get("data"):
        settings.update(source_of(config["data"]).training_settings(config["data"]))
    return settings
