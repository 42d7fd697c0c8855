"""rule tokenize: one shard of one split -> packed token ids (.bin) + counts (.json)."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.tokenize import tokenize_split  # noqa: E402

tokenize_split(
    snakemake.input.split,
    os.path.dirname(snakemake.input.tokenizer),
    snakemake.output.bin,
    snakemake.output.json,
    num_workers=snakemake.threads,
)
