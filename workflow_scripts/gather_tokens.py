"""rule gather_tokens: every shard's token metadata of one split -> tokens/{split}/index.json."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.data.tokenize import write_token_index  # noqa: E402

write_token_index(snakemake.wildcards.split, list(snakemake.input), snakemake.output[0])
