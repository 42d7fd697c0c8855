"""rule download: corpus (default / local / hub) -> one parquet with a `text` column."""
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.sources import download  # noqa: E402

download(snakemake.params.data, snakemake.output.parquet, snakemake.output.stats)
