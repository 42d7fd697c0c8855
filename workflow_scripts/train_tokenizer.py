"""rule train_tokenizer: byte-level BPE on the train split -> Hugging Face fast tokenizer files."""
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.tokenizer import train_tokenizer  # noqa: E402

train_tokenizer(
    snakemake.input[0],
    os.path.dirname(snakemake.output.json),
    vocab_size=snakemake.params.vocab_size,
    min_frequency=snakemake.params.min_frequency,
    data=snakemake.params.data,  # issue 15: data.source mqar has its own tokenizer
)
