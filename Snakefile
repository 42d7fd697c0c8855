# archbench: train and compare language-model architectures (archbench.models.registry) at matched size.
#   snakemake --cores 2                      the default run (config/config.yaml)
#   snakemake -n                             show the DAG without running it
#   snakemake --profile profiles/slurm       the same on a Slurm cluster
import os

from archbench.provenance import WORKFLOW_ENV

# Stages: download -> split -> train_tokenizer -> tokenize -> train -> evaluate -> report.


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# The checkout whose commit every result's provenance records (archbench.provenance.git_state); the jobs
# inherit it, and the package may be installed elsewhere (a wheel).
os.environ[WORKFLOW_ENV] = workflow.basedir


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
        # every evaluation that applies to this config (archbench.evaluation.registry), for every run
        # (a timed one, latency / throughput: once per architecture x shape, see run_dirs)
        [run_dirs(L.eval_file(run_name(), e.files[0]), e.timed) for e in EVALUATIONS],
        push_targets(),  # hub.push.enabled


# One run at a time per results folder, even from another project folder or checkout (Snakemake's own
# lock covers one project folder only). Hooks run in the main process only, never in cluster jobs.
onstart:
    from archbench.errors import ArchbenchError
    from archbench.io import lock_results

    try:
        lock_results(R)
    except ArchbenchError as err:
        sys.exit(f"archbench: {err}")


# The job scripts send their tracebacks to the job's log: print each failed job's cause on the console.
# Stdlib only (archbench.causes): after an out-of-memory failure, importing torch here could fail too.
onerror:
    from archbench.causes import print_causes

    print_causes(log)
