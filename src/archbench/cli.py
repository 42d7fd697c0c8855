"""archbench command line: the pipeline's evaluations on any saved model, outside Snakemake.

One subcommand per registered evaluation (archbench.evaluation.registry), whose options are the config
keys its argument builder reads, with the defaults, types and help of the schema (archbench.config.load_schema):
a command with no options reproduces what the pipeline does.

    archbench harness  MODEL_DIR --test-split results/data/split/test [--tasks ...] [--out harness.json]
    archbench latency  MODEL_DIR [--contexts 64 256 1024 2048] [--dtype bf16] [--out latency.json]
    archbench generate MODEL_DIR [--prompt "The"] [--sample --temperature 0.8 --top-p 0.9]
    archbench length   MODEL_DIR --tokens results/tokens/test/index.json
    archbench install-profile slurm      (so that `snakemake --profile slurm` finds profiles/slurm)
    archbench push RUN_DIR --repo-id NAMESPACE/NAME   (a run's model/ and model card to the Hub)

MODEL_DIR is a save_pretrained folder with its tokenizer (a run's model/ folder). `evaluate` is
another name for `harness`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from archbench import __version__
from archbench.config import load_schema, schema_defaults
from archbench.errors import ArchbenchError
from archbench.evaluation.registry import EVALUATIONS, get_evaluation
from archbench.evaluation.tasks import TAG, TASKS, build_tasks
from archbench.layout import Layout
from archbench.profiles import install_profile

ALIASES = {"harness": ["evaluate"]}  # the name the harness subcommand had first

# Options that read better than their config key, or parse specially (config path -> argparse kwargs).
SPECIAL = {
    ("generate", "prompts"): dict(flags=["--prompt"], action="append", default=None),
    ("generate", "do_sample"): dict(flags=["--sample", "--do-sample"]),
    ("eval", "limit"): dict(type="limit"),
}


def _limit(text: str):
    """An eval.limit: a document count, or a fraction below 1."""
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


class _Recorder(dict):
    """A config that records which keys are read: the config keys an argument builder uses."""

    def __init__(self, data: dict, path: tuple, seen: list):
        super().__init__(data)
        self._path, self._seen = path, seen

    def __getitem__(self, key):
        value = super().__getitem__(key)
        path = (*self._path, key)
        self._seen.append(path)
        return _Recorder(value, path, self._seen) if isinstance(value, dict) else value

    def get(self, key, default=None):
        return self[key] if key in self else default


def config_keys(evaluation, defaults: dict) -> list[tuple]:
    """The config paths (tuples of keys) the evaluation's argument builder reads, leaves only (a whole
    section read at once, like data.mqar, counts as each of its keys), in reading order."""
    seen: list[tuple] = []
    evaluation.build_args(_Recorder(defaults, (), seen))
    paths = []
    for path in dict.fromkeys(seen):
        if any(other[: len(path)] == path and other != path for other in seen):
            continue  # a section that was indexed further
        value = _lookup(defaults, path)
        paths += [(*path, k) for k in value] if isinstance(value, dict) else [path]
    return list(dict.fromkeys(paths))


def _lookup(config: dict, path: tuple):
    for key in path:
        config = config[key]
    return config


def _schema_entry(schema: dict, path: tuple) -> dict:
    entry = {"properties": schema}
    for key in path:
        entry = entry["properties"][key]
    return entry


def _help(entry: dict) -> str:
    text = " ".join(str(entry.get("description", "")).split()).replace("``", "").replace("%", "%%")
    return text or "see archbench/schema.yaml"


def _scalar_type(entry: dict):
    kinds = entry.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else [k for k in kinds if k != "null"]
    if "number" in kinds:
        return float
    return {"integer": int, "string": str, "boolean": bool}.get(kinds[0], str)


def _add_option(p, path: tuple, entry: dict, default, used: set, evaluation_name: str) -> str:
    """One option for a config key; returns its dest."""
    special = SPECIAL.get(path, {})
    name = path[-1].replace("_", "-")
    flags = special.get("flags") or [f"--{name}" if f"--{name}" not in used else f"--{'-'.join(path[-2:])}"]
    flags = [f.replace("_", "-") for f in flags]
    used.update(flags)
    dest = "cfg:" + ".".join(path)
    kw = dict(dest=dest, default=special.get("default", default), help=_help(entry))
    if special.get("action") == "append":
        kw["help"] += f" Repeat the option for several (default: {default})."
    kind = _scalar_type(entry)
    if entry.get("type") == "array":
        item = entry.get("items", {})
        kw.update(type=_scalar_type(item), metavar=path[-1].upper())
        if special.get("action"):
            kw["action"] = special["action"]
        else:
            kw["nargs"] = "+"
    elif kind is bool:
        kw["action"] = argparse.BooleanOptionalAction if not special.get("flags") else "store_true"
    else:
        kw["type"] = _limit if special.get("type") == "limit" else kind
        if "enum" in entry:
            kw["choices"] = entry["enum"]
        else:
            kw["metavar"] = path[-1].upper()
    p.add_argument(*flags, **kw)
    return dest


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's default shown, unless it has none (or says its own)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:

    schema = load_schema()["properties"]
    defaults = schema_defaults()
    parser = argparse.ArgumentParser(prog="archbench", description=__doc__.strip(), formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"archbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for evaluation in EVALUATIONS.values():
        p = sub.add_parser(
            evaluation.name,
            aliases=ALIASES.get(evaluation.name, []),
            help=evaluation.help,
            description=evaluation.help,
            formatter_class=_Formatter,
        )
        p.set_defaults(command=evaluation.name)
        p.add_argument(
            "model_dir", metavar="MODEL_DIR", help="save_pretrained folder with its tokenizer (a run's model/)"
        )
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
        used = {"--threads"}
        for name, file in evaluation.outputs.items():
            flag = "--out" if len(evaluation.outputs) == 1 else f"--out-{name}"
            p.add_argument(flag, dest=f"out_{name}", metavar="PATH", help=f"write {file} here (default: not written)")
            used.add(flag)
        for kind in evaluation.inputs.values():
            if kind == "tasks":
                p.add_argument(
                    "--test-split",
                    metavar="DIR",
                    help=f"parquet test split to build the offline archbench_* tasks from (e.g. {Layout().split_dir('test')})",
                )
                p.add_argument(
                    "--task-dir",
                    action="append",
                    default=[],
                    metavar="DIR",
                    help=f"folder of already built offline tasks (e.g. {Layout().tasks_dir()}); repeatable",
                )
            elif kind == "tokens":
                p.add_argument(
                    "--tokens",
                    required=True,
                    metavar="INDEX",
                    help=f"token index.json to evaluate on (e.g. {Layout().tokens_index('test')})",
                )
        dests = [
            _add_option(p, path, _schema_entry(schema, path), _lookup(defaults, path), used, evaluation.name)
            for path in config_keys(evaluation, defaults)
        ]
        p.set_defaults(config_dests=dests)

    p = sub.add_parser(
        "install-profile", help="link a profiles/ folder into ~/.config/snakemake/", formatter_class=_Formatter
    )
    p.add_argument("name", nargs="?", default="slurm", help="profile name (default: slurm)")
    p.add_argument("--dest", help="destination folder (default: ~/.config/snakemake/NAME)")
    _push_parser(sub)
    return parser


def _push_parser(sub) -> None:
    p = sub.add_parser(
        "push",
        help="upload a run's model/ (weights, tokenizer, model card) to the Hugging Face Hub",
        formatter_class=_Formatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder under results/runs/ (holding model/)")
    p.add_argument("--repo-id", required=True, help="NAMESPACE/NAME of the Hub model repository")
    p.add_argument(
        "--public", action="store_false", dest="private", help="create the repository public (default: private)"
    )
    p.add_argument("--revision", default=None, help="branch to commit to (default: main)")


def _push(a) -> None:
    from archbench.hub import push_run

    print(push_run(a.run_dir, a.repo_id, private=a.private, revision=a.revision))


def _config(a) -> dict:
    """The pipeline config these arguments stand for: the schema's defaults, then every option given
    (an option's dest names its config key)."""

    config = schema_defaults()
    for dest in a.config_dests:
        value = getattr(a, dest)
        if value is None and dest.endswith(".prompts"):
            continue  # --prompt not given: the schema's prompts
        *parents, key = dest.removeprefix("cfg:").split(".")
        _lookup(config, tuple(parents))[key] = value
    return config


def _task_dirs(a, args: dict, tmp: str) -> list[str]:
    """The offline task folders of a harness call: built from --test-split and/or given by --task-dir."""

    task_dirs = list(a.task_dir)
    if a.test_split:
        build_tasks(a.test_split, tmp, seed=args["seed"])
        task_dirs.append(tmp)
    if not task_dirs and any(t in TASKS or t == TAG for t in args["tasks"]):
        raise ArchbenchError(
            "the archbench_* tasks are built from a test split: pass --test-split DIR "
            f"(e.g. {Layout().split_dir('test')}) or --task-dir {Layout().tasks_dir()}, or name other --tasks"
        )
    return task_dirs


def _show(name: str, out) -> None:
    """What a subcommand prints: a table for latency, the samples for generate, else the result JSON."""
    if name == "latency":
        from archbench.evaluation.latency import latency_table  # torch: only when latency ran

        print(
            f"per-token decode time (ms, median), batch {out['summary'].get('batch_size')}, "
            f"{out['summary']['device']}, {out['summary']['threads']} threads"
        )
        print(latency_table([out]))
    elif name == "generate":
        for row in out:
            print(f"## {row['prompt']!r}\n{row['prompt']}{row['completion']}\n")
    else:
        print(json.dumps(out.get("results", out) if isinstance(out, dict) else out, indent=2, default=str))


def _evaluate(a) -> None:

    evaluation = get_evaluation(a.command)
    args = evaluation.build_args(_config(a))
    kwargs = {
        "model_dir": a.model_dir,
        "threads": a.threads,
        **{f"out_{n}": getattr(a, f"out_{n}") for n in evaluation.outputs},
    }
    with tempfile.TemporaryDirectory(prefix="archbench-tasks-") as tmp:
        for kind in evaluation.inputs.values():
            if kind == "tasks":
                kwargs["task_dirs"] = _task_dirs(a, args, tmp)
            elif kind == "tokens":
                kwargs["tokens"] = a.tokens
        out = evaluation.call()(**kwargs, **args)
    _show(evaluation.name, out)


def _install_profile(a) -> None:

    dest = install_profile(a.name, a.dest)
    print(f"{dest} -> {dest.resolve()}: `snakemake --profile {a.name}` now uses it")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"install-profile": _install_profile, "push": _push}
    try:
        commands.get(args.command, _evaluate)(args)
    except ArchbenchError as err:  # the user's input: one line, no traceback
        print(f"archbench: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
