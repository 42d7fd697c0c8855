"""rule split_plan: every shard's document count (download stats) -> one small plan file for the split jobs
(with the fill of every split for a small corpus)."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.data.split import write_split_plan  # noqa: E402

write_split_plan(
    list(snakemake.input.stats),
    snakemake.output[0],
    snakemake.params.ratios,
    snakemake.params.max_documents,
    shuffle=snakemake.params.shuffle,
    seed=snakemake.params.seed,
    raw_paths=list(snakemake.input.raw),
)
