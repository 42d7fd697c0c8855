# Data stages, one job per shard (an input file, a slice of a big one or a group of small ones; see
# archbench.data.shards), read by the config's data source (archbench.data.sources):
#   download/{shard} -> [split_plan: corpora of several shards] -> split/{shard} -> [train_tokenizer: sample of every train shard] -> tokenize/{split}/{shard}
#   -> gather_tokens/{split}: results/tokens/{split}/index.json (what training reads).
# The shard list is planned here, at parse time, so every per-shard job is in the DAG (dry runs, Slurm).
from archbench.data.shards import _SHARD_RE, plan_shards
from archbench.data.sources import source_of
from archbench.errors import ArchbenchError

SOURCE = source_of(config["data"])  # the data source entry (archbench.data.sources)

try:
    SHARDS = plan_shards(config["data"], R)
except ArchbenchError as err:
    sys.exit(f"archbench: invalid data config: {err}")
SHARD_NAMES = list(SHARDS)  # sorted = corpus order
# Exact contiguous splits, max_documents and the fill of a small corpus's splits need every shard's
# document count: one split_plan job gathers them into one small file that each split job reads (edges
# linear in the shard count). A corpus of one shard reads its own download stats instead.
if len(SHARD_NAMES) == 1:
    SPLIT_COUNTS = [f"{R}/data/raw/{SHARD_NAMES[0]}.json"]
else:
    SPLIT_COUNTS = [f"{R}/data/split_plan.json"]


wildcard_constraints:
    shard=_SHARD_RE,


rule download:
    input:  # the local files a shard is read from (editing one reruns the shard), as its source says
        lambda w: SOURCE.inputs(SHARDS[w.shard]),
    output:
        parquet=f"{R}/data/raw/{{shard}}.parquet",
        stats=f"{R}/data/raw/{{shard}}.json",
    log:
        f"{R}/logs/download/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/download/{{shard}}.tsv"
    conda:
        ENV
    params:
        shard=lambda w: SHARDS[w.shard],
        data=SOURCE.download_params(config["data"]),  # only what reading uses: max_documents reruns no download
    script:
        "../workflow_scripts/download.py"


rule split_plan:
    input:
        stats=expand(f"{R}/data/raw/{{shard}}.json", shard=SHARD_NAMES),
        raw=expand(f"{R}/data/raw/{{shard}}.parquet", shard=SHARD_NAMES),  # read only for a small corpus
    output:
        f"{R}/data/split_plan.json",
    log:
        f"{R}/logs/split_plan.log",
    benchmark:
        f"{R}/benchmarks/split_plan.tsv"
    conda:
        ENV
    params:
        ratios=config["splits"],
        max_documents=config["data"].get("max_documents"),
        shuffle=config["shuffle"],
        seed=config["seed"],
    script:
        "../workflow_scripts/split_plan.py"


rule split:
    input:
        raw=rules.download.output.parquet,
        counts=SPLIT_COUNTS,
    output:
        **{s: f"{R}/data/split/{s}/{{shard}}.parquet" for s in SPLITS},
        stats=f"{R}/data/split/stats/{{shard}}.json",
    log:
        f"{R}/logs/split/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/split/{{shard}}.tsv"
    conda:
        ENV
    params:
        ratios=config["splits"],
        shuffle=config["shuffle"],
        seed=config["seed"],
        max_documents=config["data"].get("max_documents"),
    script:
        "../workflow_scripts/split.py"


rule train_tokenizer:
    input:
        expand(f"{R}/data/split/train/{{shard}}.parquet", shard=SHARD_NAMES),
    output:
        json=f"{R}/tokenizer/tokenizer.json",
        config=f"{R}/tokenizer/tokenizer_config.json",
    log:
        f"{R}/logs/train_tokenizer.log",
    benchmark:
        f"{R}/benchmarks/train_tokenizer.tsv"
    conda:
        ENV
    threads: 2
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
        min_frequency=config["tokenizer"]["min_frequency"],
        sample_bytes=config["tokenizer"]["sample_bytes"],
        # a source with its own tokenizer (MQAR's word level) and the settings it reads; else None (BPE)
        data=(
            None
            if SOURCE.tokenizer_params(config["data"]) is None
            else {"source": SOURCE.name, **SOURCE.tokenizer_params(config["data"])}
        ),
    script:
        "../workflow_scripts/train_tokenizer.py"


rule tokenize:
    input:
        split=f"{R}/data/split/{{split}}/{{shard}}.parquet",
        tokenizer=rules.train_tokenizer.output.json,
    output:
        bin=f"{R}/tokens/{{split}}/{{shard}}.bin",
        json=f"{R}/tokens/{{split}}/{{shard}}.json",
    log:
        f"{R}/logs/tokenize/{{split}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/tokenize/{{split}}/{{shard}}.tsv"
    conda:
        ENV
    threads: 1  # shards are the parallelism: one core per shard job
    script:
        "../workflow_scripts/tokenize.py"


rule gather_tokens:
    input:
        expand(f"{R}/tokens/{{{{split}}}}/{{shard}}.json", shard=SHARD_NAMES),
    output:
        f"{R}/tokens/{{split}}/index.json",
    log:
        f"{R}/logs/tokenize/{{split}}/index.log",
    conda:
        ENV
    script:
        "../workflow_scripts/gather_tokens.py"


localrules:
    gather_tokens,  # reads a few small JSON files
    split_plan,  # reads one small JSON file per shard (and the text of a small corpus)
