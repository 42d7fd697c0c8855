# Data stages: one corpus -> three splits -> one tokenizer (train split only) -> packed tokens per split.


rule download:
    output:
        parquet=f"{R}/data/raw/corpus.parquet",
        stats=f"{R}/data/raw/stats.json",
    params:
        data=config["data"],
    log:
        f"{R}/logs/download.log",
    conda:
        ENV
    script:
        "../workflow_scripts/download.py"


rule split:
    input:
        rules.download.output.parquet,
    output:
        **{s: directory(f"{R}/data/split/{s}") for s in SPLITS},
        stats=f"{R}/data/split/stats.json",
    params:
        ratios=config["splits"],
        shuffle=config["shuffle"],
        seed=config["seed"],
    log:
        f"{R}/logs/split.log",
    conda:
        ENV
    threads: 2
    script:
        "../workflow_scripts/split.py"


rule train_tokenizer:
    input:
        rules.split.output.train,
    output:
        json=f"{R}/tokenizer/tokenizer.json",
        config=f"{R}/tokenizer/tokenizer_config.json",
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
        min_frequency=config["tokenizer"]["min_frequency"],
        data=config["data"],  # issue 15: data.source mqar -> word-level tokenizer
    log:
        f"{R}/logs/train_tokenizer.log",
    conda:
        ENV
    threads: 2
    script:
        "../workflow_scripts/train_tokenizer.py"


rule tokenize:
    input:
        split=f"{R}/data/split/{{split}}",
        tokenizer=rules.train_tokenizer.output.json,
    output:
        bin=f"{R}/tokens/{{split}}.bin",
        json=f"{R}/tokens/{{split}}.json",
    log:
        f"{R}/logs/tokenize/{{split}}.log",
    conda:
        ENV
    threads: 2
    script:
        "../workflow_scripts/tokenize.py"
