"""rule split_plan: every shard's document count (download stats) -> one small plan file for the split jobs."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.split import write_split_plan  # noqa: E402

write_split_plan(list(snakemake.input), snakemake.output[0], snakemake.params.ratios, snakemake.params.max_documents)
