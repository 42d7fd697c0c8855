"""``archbench`` command line: the pipeline's evaluation functions on any saved model, outside Snakemake.

    archbench evaluate MODEL_DIR --test-split results/data/split/test [--tasks ...] [--out harness.json]
    archbench latency  MODEL_DIR [--contexts 64 256 1024 2048] [--out latency.json]
    archbench generate MODEL_DIR [--prompt "The"] [--sample --temperature 0.8 --top-p 0.9]
    archbench install-profile slurm      (so that `snakemake --profile slurm` finds profiles/slurm)
    archbench push RUN_DIR --repo-id NAMESPACE/NAME   (a run's model/ and model card to the Hub)

MODEL_DIR is a ``save_pretrained`` folder with its tokenizer (a run's ``model/``). Defaults are
those of config/schema.yaml, so a command reproduces what the pipeline does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from archbench.errors import ArchbenchError


def _limit(text: str):
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def _parser() -> argparse.ArgumentParser:
    from archbench.evaluation.calls import schema_defaults

    defaults = schema_defaults()
    ev, lat, gen = defaults["eval"], defaults["latency"], defaults["generate"]
    parser = argparse.ArgumentParser(prog="archbench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("model_dir", metavar="MODEL_DIR", help="save_pretrained folder with its tokenizer")
        p.add_argument("--device", default=ev["device"], choices=["auto", "cpu", "cuda"])
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
        return p

    p = command("evaluate", "lm-evaluation-harness scores (harness.json)")
    p.add_argument("--tasks", nargs="+", default=ev["tasks"], help="lm-eval task / group / tag names")
    p.add_argument("--test-split", help="parquet test split to build the offline archbench_* tasks from")
    p.add_argument("--task-dir", action="append", default=[], help="folder of already built offline tasks")
    p.add_argument("--include-path", default=ev["include_path"], help="folder of extra task YAMLs")
    p.add_argument("--num-fewshot", type=int, default=ev["num_fewshot"])
    p.add_argument("--limit", type=_limit, default=ev["limit"], help="documents per task (or a fraction < 1)")
    p.add_argument("--batch-size", type=int, default=ev["batch_size"])
    p.add_argument("--bootstrap-iters", type=int, default=ev["bootstrap_iters"])
    p.add_argument("--seed", type=int, default=defaults["seed"], help="seed of the task items")
    p.add_argument("--out", help="write harness.json here")

    p = command("latency", "prefill / per-token decode time and memory vs context (latency.json)")
    p.add_argument("--contexts", type=int, nargs="+", default=lat["contexts"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=lat["batch_sizes"])
    for key in ("new_tokens", "trials", "warmup", "recompute_max_context"):
        p.add_argument("--" + key.replace("_", "-"), type=int, default=lat[key])
    p.add_argument("--seed", type=int, default=defaults["seed"], help="seed of the random prompts")
    p.add_argument("--out", help="write latency.json here")

    p = command("generate", "text samples through generate() (samples.txt / samples.csv)")
    p.add_argument(
        "--prompt", action="append", dest="prompts", default=None, help="repeat for several (default: the schema's)"
    )
    p.add_argument("--max-new-tokens", type=int, default=gen["max_new_tokens"])
    p.add_argument(
        "--sample", action="store_true", dest="do_sample", default=gen["do_sample"], help="sample instead of greedy"
    )
    p.add_argument("--temperature", type=float, default=gen["temperature"])
    p.add_argument("--top-p", type=float, default=gen["top_p"])
    p.add_argument("--top-k", type=int, default=gen["top_k"])
    p.add_argument("--seed", type=int, default=gen["seed"])
    p.add_argument("--out-txt")
    p.add_argument("--out-csv")

    p = sub.add_parser("install-profile", help="link a profiles/ folder into ~/.config/snakemake/")
    p.add_argument("name", nargs="?", default="slurm", help="profile name (default: slurm)")
    p.add_argument("--dest", help="destination folder (default: ~/.config/snakemake/NAME)")
    _push_parser(sub)
    return parser


def _push_parser(sub) -> None:
    p = sub.add_parser("push", help="upload a run's model/ (weights, tokenizer, model card) to the Hugging Face Hub")
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
    (an option's dest is its config key; --seed is the top-level seed, generate's own for generate)."""
    from archbench.evaluation.calls import schema_defaults

    config = schema_defaults()
    section = {"evaluate": "eval", "latency": "latency", "generate": "generate"}[a.command]
    for key in config[section]:
        if getattr(a, key, None) is not None:
            config[section][key] = getattr(a, key)
    config["eval"]["device"] = a.device
    if a.command != "generate":
        config["seed"] = a.seed
    return config


def _evaluate(a) -> None:
    from archbench.evaluation.calls import harness_args
    from archbench.evaluation.harness import run_harness
    from archbench.evaluation.tasks import TAG, TASKS, build_tasks

    args = harness_args(_config(a))
    with tempfile.TemporaryDirectory(prefix="archbench-tasks-") as tmp:
        task_dirs = list(a.task_dir)
        if a.test_split:
            build_tasks(a.test_split, tmp, seed=args["seed"])
            task_dirs.append(tmp)
        if not task_dirs and any(t in TASKS or t == TAG for t in args["tasks"]):
            raise ArchbenchError(
                "the archbench_* tasks are built from a test split: pass --test-split DIR "
                "(e.g. results/data/split/test) or --task-dir results/eval/tasks, or name "
                "other --tasks"
            )
        out = run_harness(a.model_dir, a.out, task_dirs=task_dirs, threads=a.threads, **args)
    print(json.dumps(out["results"], indent=2))


def _latency(a) -> None:
    from archbench.evaluation.calls import latency_args
    from archbench.evaluation.latency import latency_table, run_latency

    out = run_latency(a.model_dir, a.out, threads=a.threads, **latency_args(_config(a)))
    print(
        f"per-token decode time (ms, median), batch {out['summary'].get('batch_size')}, "
        f"{out['summary']['device']}, {out['summary']['threads']} threads"
    )
    print(latency_table([out]))


def _generate(a) -> None:
    from archbench.evaluation.calls import generate_args
    from archbench.evaluation.generate import run_generate

    rows = run_generate(a.model_dir, a.out_txt, a.out_csv, threads=a.threads, **generate_args(_config(a)))
    for row in rows:
        print(f"## {row['prompt']!r}\n{row['prompt']}{row['completion']}\n")


def _install_profile(a) -> None:
    from archbench.profiles import install_profile

    dest = install_profile(a.name, a.dest)
    print(f"{dest} -> {dest.resolve()}: `snakemake --profile {a.name}` now uses it")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "evaluate": _evaluate,
        "latency": _latency,
        "generate": _generate,
        "install-profile": _install_profile,
        "push": _push,
    }
    try:
        commands[args.command](args)
    except ArchbenchError as err:  # the user's input: one line, no traceback
        print(f"archbench: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
