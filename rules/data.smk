# Data stages, one job per shard (an input file, a slice of a big one or a group of small ones; see
# archbench.data.shards), read by the config's data source (archbench.data.sources):
#   download/{shard} -> [split_plan: corpora of several shards] -> split/{shard} -> [train_tokenizer: sample of every train shard] -> tokenize/{split}/{shard}
#   -> gather_tokens/{split}: the split's token index (what training reads).
# The shard list is planned here, at parse time, so every per-shard job is in the DAG (dry runs, Slurm).
# Every path: archbench.layout (L, rules/common.smk).
from archbench.data.shards import SHARD_RE
from archbench.data.sources import plan_shards, source_of
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
    SPLIT_COUNTS = [L.raw(SHARD_NAMES[0], "json")]
else:
    SPLIT_COUNTS = [L.split_plan()]


wildcard_constraints:
    shard=SHARD_RE,


rule download:
    input:  # the local files a shard is read from (editing one reruns the shard), as its source says
        lambda w: SOURCE.inputs(SHARDS[w.shard]),
    output:
        parquet=L.raw(),
        stats=L.raw(ext="json"),
    log:
        L.log("download", "{shard}"),
    benchmark:
        L.benchmark("download", "{shard}")
    conda:
        ENV
    params:
        shard=lambda w: SHARDS[w.shard],
        data=SOURCE.download_params(config["data"]),  # only what reading uses: max_documents reruns no download
    script:
        "../workflow_scripts/download.py"


rule split_plan:
    input:
        stats=expand(L.raw(ext="json"), shard=SHARD_NAMES),
        raw=expand(L.raw(), shard=SHARD_NAMES),  # read only for a small corpus
    output:
        L.split_plan(),
    log:
        L.log("split_plan"),
    benchmark:
        L.benchmark("split_plan")
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
        **{s: L.split(s) for s in SPLITS},
        stats=L.split_stats(),
    log:
        L.log("split", "{shard}"),
    benchmark:
        L.benchmark("split", "{shard}")
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
        expand(L.split("train"), shard=SHARD_NAMES),
    output:
        json=L.tokenizer_file(),
        config=L.tokenizer_file("tokenizer_config.json"),
    log:
        L.log("train_tokenizer"),
    benchmark:
        L.benchmark("train_tokenizer")
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
        split=L.split(),
        tokenizer=rules.train_tokenizer.output.json,
    output:
        bin=L.tokens(),
        json=L.tokens(ext="json"),
    log:
        L.log("tokenize", "{split}", "{shard}"),
    benchmark:
        L.benchmark("tokenize", "{split}", "{shard}")
    conda:
        ENV
    threads: 1  # shards are the parallelism: one core per shard job
    script:
        "../workflow_scripts/tokenize.py"


rule gather_tokens:
    input:
        expand(L.tokens("{{split}}", ext="json"), shard=SHARD_NAMES),  # {split} stays a wildcard
    output:
        L.tokens_index(),
    log:
        L.log("tokenize", "{split}", "index"),
    conda:
        ENV
    script:
        "../workflow_scripts/gather_tokens.py"


localrules:
    gather_tokens,  # reads a few small JSON files
    split_plan,  # reads one small JSON file per shard (and the text of a small corpus)
