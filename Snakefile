# archbench: train and compare RetNet, Transformer and LongNet language models.
#   snakemake --cores 2                      the default run (config/config.yaml)
#   snakemake -n                             show the DAG without running it
#   snakemake --profile profiles/slurm       the same on a Slurm cluster
import os

# Stages: download -> split -> train_tokenizer -> tokenize -> train -> evaluate -> report.


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/publish.smk"


# Jobs that run on the submitting node under a cluster executor: seconds each, no GPU.
localrules:
    all,
    collect,
    plots,
    plot_latency,
    summary,


rule all:
    default_target: True
    input:
        rules.summary.output,
        run_dirs(f"{R}/eval/{{arch}}/{{point}}/seed~{{seed}}/harness.json"),
        run_dirs(f"{R}/eval/{{arch}}/{{point}}/seed~{{seed}}/latency.json"),
        run_dirs(f"{R}/eval/{{arch}}/{{point}}/seed~{{seed}}/samples.txt"),
        push_targets(),  # hub.push.enabled
