"""rule <evaluation> of a registered evaluation without an adapter of its own (a plugin's): calls its
function with the run's paths (archbench.evaluation.registry: Evaluation.call_kwargs) and its arguments."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.registry import get_evaluation  # noqa: E402

evaluation = get_evaluation(snakemake.rule)
evaluation.call()(
    **evaluation.call_kwargs(dict(snakemake.input.items()), dict(snakemake.output.items())),
    threads=snakemake.threads,
    **snakemake.params.args,
)
