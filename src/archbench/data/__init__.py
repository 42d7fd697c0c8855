"""Data stages of the pipeline, one module per Snakemake rule, one job per corpus shard.

``sources`` (the data sources: one module each, a registry, the ``archbench.sources`` entry point) →
``sources.plan_shards`` (at parse time; ``shards``: how a source plans them) → ``download.download_shard`` → ``split.write_split_plan`` /
``split.split_shard_job`` → ``tokenizer.train_tokenizer`` (sample of every train shard) →
``tokenize.tokenize_split`` per shard → ``tokenize.write_token_index`` → ``loader.make_dataloader``
(used by training/evaluation). ``readers`` (input formats, parquet shards) and ``vocab`` (special tokens,
tokenizer files) are the bottom layer; ``mqar`` is the MQAR generator its source uses.
Submodules are imported on demand so that e.g. the loader does not pull in pyarrow readers.
"""
