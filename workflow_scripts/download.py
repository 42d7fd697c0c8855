"""rule download: one shard of the corpus (default / local file / hub file) -> parquet with a `text` column."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.sources import download_shard  # noqa: E402

download_shard(snakemake.params.shard, snakemake.params.data, snakemake.output.parquet, snakemake.output.stats)
