# One training job per architecture x grid point x seed. Devices and nodes per job come from config
# (training.devices, training.num_nodes); archbench.training.cluster turns them into Slurm resources.
from archbench.training import cluster

TRAIN = config["training"]


TRAIN_INPUT = dict(
    **{split: L.tokens_index(split) for split in SPLITS},
    tokenizer=rules.train_tokenizer.output.json,
)
TRAIN_OUTPUT = dict(
    metrics=L.metrics(RUN),
    model=L.model_config(RUN),
)


# One rule for every layout: one device, N devices on one node (Lightning starts the processes) or
# several nodes (resources `mpi`, `nodes` and tasks make the Slurm plugin run the job in the batch
# script, where the adapter's `srun` starts one Lightning rank per device); see training/cluster.py.
rule train:
    input:
        **TRAIN_INPUT,
    output:
        **TRAIN_OUTPUT,
    log:
        L.log("train", RUN),
    benchmark:
        L.benchmark("train", RUN)
    conda:
        ENV
    threads: TRAIN["threads"]
    resources:
        **cluster.train_resources(TRAIN),
    params:
        settings=settings,
        emissions=config["emissions"],
        scratch=scratch_dir,
    script:
        "../workflow_scripts/train.py"
