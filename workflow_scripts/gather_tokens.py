"""rule gather_tokens: every shard's token metadata of one split -> tokens/{split}/index.json."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.tokenize import write_token_index  # noqa: E402

write_token_index(snakemake.wildcards.split, list(snakemake.input), snakemake.output[0])
