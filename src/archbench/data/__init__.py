"""Data stages of the pipeline, one module per Snakemake rule.

``sources.download`` → ``split.split_corpus`` → ``tokenizer.train_tokenizer`` →
``tokenize.tokenize_split`` → ``loader.make_dataloader`` (used by training/evaluation).
Submodules are imported on demand so that e.g. the loader does not pull in Dask.
"""
