"""rule download: one shard of the corpus (default / local file / hub file) -> parquet with a `text` column."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.data.download import download_shard  # noqa: E402

download_shard(snakemake.params.shard, snakemake.params.data, snakemake.output.parquet, snakemake.output.stats)
