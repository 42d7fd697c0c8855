# Evaluation of every trained run: lm-eval harness scores, decode latency / memory vs context, and
# text samples; plus the offline harness tasks, written once from the held-out test split.
from archbench.evaluation.calls import generate_args, harness_args, latency_args
from archbench.evaluation.tasks import TASKS as OFFLINE_TASKS, task_yamls

EVAL_DIR = f"{R}/eval/{RUN}"
TASK_DIR = f"{R}/eval/tasks"
EVAL_GPU = 1 if config["eval"]["device"] == "cuda" else 0


rule eval_tasks:
    input:
        expand(f"{R}/data/split/test/{{shard}}.parquet", shard=SHARD_NAMES),
    output:
        yaml=expand(f"{TASK_DIR}/{{task}}.yaml", task=OFFLINE_TASKS),
        jsonl=expand(f"{TASK_DIR}/{{task}}.jsonl", task=OFFLINE_TASKS),
    log:
        f"{R}/logs/eval/tasks.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/eval_tasks.py"


rule harness:
    input:
        model=rules.train.output.model,
        tasks=rules.eval_tasks.output.yaml,
        include=task_yamls(config["eval"]["include_path"]),  # edit one: the harness reruns
    output:
        f"{EVAL_DIR}/harness.json",
    log:
        f"{R}/logs/eval/harness/{RUN}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=EVAL_GPU,
    params:
        args=harness_args(config),  # the same builder as `archbench evaluate`
    script:
        "../workflow_scripts/harness.py"


# Timings are only comparable when nothing else runs beside them: 2 threads (all of the default
# run's cores) keep Snakemake from scheduling another job alongside.
rule latency:
    input:
        model=rules.train.output.model,
    output:
        f"{EVAL_DIR}/latency.json",
    log:
        f"{R}/logs/eval/latency/{RUN}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=EVAL_GPU,
    params:
        args=latency_args(config),
    script:
        "../workflow_scripts/latency.py"


rule generate:
    input:
        model=rules.train.output.model,
    output:
        txt=f"{EVAL_DIR}/samples.txt",
        csv=f"{EVAL_DIR}/samples.csv",
    log:
        f"{R}/logs/eval/generate/{RUN}.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=EVAL_GPU,
    params:
        args=generate_args(config),
    script:
        "../workflow_scripts/generate.py"


# ---- issue 15: the architecture questions (length extrapolation, decode throughput vs batch, recall)


# Loss per position bucket at k x the training length, on the same test tokens the run was tested on.
rule length:
    input:
        model=rules.train.output.model,
        tokens=rules.train.input.test,
    output:
        f"{EVAL_DIR}/length.json",
    log:
        f"{R}/logs/eval/length/{RUN}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=EVAL_GPU,
    params:
        length=config["length"],
        device=config["eval"]["device"],
    script:
        "../workflow_scripts/length.py"


# Timed like rule latency (all of the default run's cores, nothing beside it).
rule throughput:
    input:
        model=rules.train.output.model,
    output:
        f"{EVAL_DIR}/throughput.json",
    log:
        f"{R}/logs/eval/throughput/{RUN}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=EVAL_GPU,
    params:
        latency=config["latency"],
        device=config["eval"]["device"],
        seed=config["seed"],
    script:
        "../workflow_scripts/throughput.py"


rule recall:
    input:
        model=rules.train.output.model,
    output:
        f"{EVAL_DIR}/recall.json",
    log:
        f"{R}/logs/eval/recall/{RUN}.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=EVAL_GPU,
    params:
        mqar=config["data"]["mqar"],
        device=config["eval"]["device"],
    script:
        "../workflow_scripts/recall.py"
