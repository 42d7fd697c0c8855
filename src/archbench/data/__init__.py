"""Data stages of the pipeline, one module per Snakemake rule, one job per corpus shard.

``shards.plan_shards`` (at parse time) → ``sources.download_shard`` → ``split.split_shard_job`` →
``tokenizer.train_tokenizer`` (sample of every train shard) → ``tokenize.tokenize_split`` per shard →
``tokenize.write_token_index`` → ``loader.make_dataloader`` (used by training/evaluation).
Submodules are imported on demand so that e.g. the loader does not pull in pyarrow readers.
"""
