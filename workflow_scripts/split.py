"""rule split: one normalised shard -> its train / validation / test parquet files."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.data.split import split_shard_job  # noqa: E402

split_shard_job(
    snakemake.wildcards.shard,
    snakemake.input.raw,
    snakemake.input.counts,
    {s: snakemake.output[s] for s in ("train", "validation", "test")},
    snakemake.params.ratios,
    snakemake.params.shuffle,
    snakemake.params.seed,
    snakemake.params.max_documents,
    snakemake.output.stats,
)
