"""rule tokenize: one shard of one split -> packed token ids (.bin) + counts (.json)."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.data.tokenize import tokenize_split  # noqa: E402

tokenize_split(
    snakemake.input.split,
    os.path.dirname(snakemake.input.tokenizer),
    snakemake.output.bin,
    snakemake.output.json,
    num_workers=snakemake.threads,
)
