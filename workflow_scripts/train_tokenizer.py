"""rule train_tokenizer: byte-level BPE on (a sample of) the train shards -> Hugging Face fast tokenizer files."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.data.tokenizer import train_tokenizer  # noqa: E402

train_tokenizer(
    list(snakemake.input),
    os.path.dirname(snakemake.output.json),
    vocab_size=snakemake.params.vocab_size,
    min_frequency=snakemake.params.min_frequency,
    sample_bytes=snakemake.params.sample_bytes,
    data=snakemake.params.data,  # data.source mqar has its own (word-level) tokenizer
)
