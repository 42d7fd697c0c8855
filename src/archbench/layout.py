"""Where every result file lives, written once: the rules, the report and the CLI build paths here.

``Layout(results)`` turns the ``results`` folder of a config into paths. A run is
``{arch}/{point}/seed~{seed}``: the rules pass the grid point's wildcard pattern as ``point`` (so the
paths are Snakemake patterns), the report fills in a real grid point. Nothing parses a path back: a run's
identity is its ``metrics.json``. Torch-free and Snakemake-free (the Snakefile parse imports it).
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "validation", "test")


def run_name(point: str = "{point}", arch: str = "{arch}", seed: str | int = "{seed}") -> str:
    """One run's folder below runs/, eval/, scratch/ and logs/<stage>/: ``{arch}/{point}/seed~{seed}``."""
    return f"{arch}/{point}/seed~{seed}"


@dataclass(frozen=True)
class Layout:
    """Paths below one results folder; ``run`` arguments are :func:`run_name` strings (or patterns)."""

    results: str = "results"

    # ---- data
    def raw(self, shard: str = "{shard}", ext: str = "parquet") -> str:
        return f"{self.results}/data/raw/{shard}.{ext}"

    def split_plan(self) -> str:
        """Every shard's document count, for the split jobs of a corpus of several shards."""
        return f"{self.results}/data/split_plan.json"

    def split_dir(self, split: str = "{split}") -> str:
        return f"{self.results}/data/split/{split}"

    def split(self, split: str = "{split}", shard: str = "{shard}") -> str:
        return f"{self.split_dir(split)}/{shard}.parquet"

    def split_stats(self, shard: str = "{shard}") -> str:
        return f"{self.results}/data/split/stats/{shard}.json"

    def tokenizer_dir(self) -> str:
        return f"{self.results}/tokenizer"

    def tokenizer_file(self, name: str = "tokenizer.json") -> str:
        """A file of the saved tokenizer (``tokenizer.json``, ``tokenizer_config.json``)."""
        return f"{self.tokenizer_dir()}/{name}"

    def tokens(self, split: str = "{split}", shard: str = "{shard}", ext: str = "bin") -> str:
        return f"{self.results}/tokens/{split}/{shard}.{ext}"

    def tokens_index(self, split: str = "{split}") -> str:
        """What training reads: every shard of a split's tokens."""
        return f"{self.results}/tokens/{split}/index.json"

    # ---- runs
    def run_dir(self, run: str) -> str:
        return f"{self.results}/runs/{run}"

    def metrics(self, run: str) -> str:
        return f"{self.run_dir(run)}/metrics.json"

    def model_config(self, run: str) -> str:
        """A saved model's config.json: the file that stands for the model/ folder in the DAG."""
        return f"{self.run_dir(run)}/model/config.json"

    def scratch_dir(self, run: str) -> str:
        """Resumable checkpoints, outside the declared outputs (Snakemake deletes those on failure)."""
        return f"{self.results}/scratch/{run}"

    # ---- evaluation
    def eval_dir(self, run: str) -> str:
        return f"{self.results}/eval/{run}"

    def eval_file(self, run: str, name: str) -> str:
        return f"{self.eval_dir(run)}/{name}"

    def tasks_dir(self) -> str:
        """The offline harness tasks built from the test split (once for every run)."""
        return f"{self.results}/eval/tasks"

    # ---- publishing (hub.push)
    def hub_record(self, run: str) -> str:
        """What the push rule uploaded for a run (repo id, commit), one JSON per run."""
        return f"{self.results}/hub/{run}.json"

    # ---- report
    def report_dir(self) -> str:
        return f"{self.results}/report"

    def plots_dir(self) -> str:
        return f"{self.report_dir()}/plots"

    # ---- logs and benchmarks: <stage>[/<name>...] below logs/ and benchmarks/
    def log(self, *parts: str) -> str:
        return f"{self.results}/logs/{'/'.join(parts)}.log"

    def benchmark(self, *parts: str) -> str:
        return f"{self.results}/benchmarks/{'/'.join(parts)}.tsv"
