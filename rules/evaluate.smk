# Evaluation of every trained run: one rule per entry of archbench.evaluation.registry (harness, latency,
# generate, length, throughput, recall, retrieval, and any plugin's), generated in one loop; plus the offline harness
# tasks, written once from the held-out test split.
from archbench.evaluation.registry import EVALUATIONS as EVALUATION_ENTRIES, applicable, collected, eval_gpus
from archbench.evaluation.tasks import TASKS as OFFLINE_TASKS

EVAL_DIR = L.eval_dir(RUN)
TASK_DIR = L.tasks_dir()
EVAL_GPU = eval_gpus(config)
EVALUATIONS = applicable(config)
COLLECTED = collected(EVALUATIONS)  # their main output feeds the report's grid table (rule collect)


rule eval_tasks:
    input:
        expand(L.split("test", "{shard}"), shard=SHARD_NAMES),
    output:
        yaml=expand(f"{TASK_DIR}/{{task}}.yaml", task=OFFLINE_TASKS),
        jsonl=expand(f"{TASK_DIR}/{{task}}.jsonl", task=OFFLINE_TASKS),
    log:
        L.log("eval", "tasks"),
    benchmark:
        L.benchmark("eval", "tasks")
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/eval_tasks.py"


# Timed evaluations (latency, throughput) take 2 threads, all of the default run's cores, so that
# Snakemake schedules nothing beside them. An evaluation that runs the model gets a GPU when the config
# asks for one (eval.device cuda, or auto with training on GPUs); the profile adds CPUs, memory, time.
for evaluation in EVALUATIONS:

    rule:
        name:
            evaluation.name
        input:
            **eval_inputs(evaluation),
        output:
            **{name: f"{EVAL_DIR}/{file}" for name, file in evaluation.outputs.items()},
        log:
            L.log("eval", evaluation.name, RUN),
        benchmark:
            L.benchmark("eval", evaluation.name, RUN)
        conda:
            ENV
        threads: evaluation.threads
        resources:
            gpu=EVAL_GPU if evaluation.model else 0,
        params:
            args=evaluation.build_args(config),  # the same builder as the `archbench` CLI
        script:
            # one adapter for all: a path built from `evaluation` would be read when the job runs,
            # after the loop, i.e. the last evaluation's (it looks its entry up by rule name)
            "../workflow_scripts/evaluation.py"
