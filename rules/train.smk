# One training job per architecture x grid point x seed. Devices and nodes per job come from config
# (training.devices, training.num_nodes); archbench.training.cluster turns them into Slurm resources.
from archbench.training import cluster

TRAIN = config["training"]


TRAIN_INPUT = dict(
    train=f"{R}/tokens/train/index.json",
    validation=f"{R}/tokens/validation/index.json",
    test=f"{R}/tokens/test/index.json",
    tokenizer=rules.train_tokenizer.output.json,
)
TRAIN_OUTPUT = dict(
    metrics=f"{R}/runs/{RUN}/metrics.json",
    model=f"{R}/runs/{RUN}/model/config.json",
)


if not cluster.is_multinode(TRAIN):

    # One node: Lightning launches one process per device itself (see training/cluster.py).
    rule train:
        input:
            **TRAIN_INPUT,
        output:
            **TRAIN_OUTPUT,
        params:
            settings=settings,
            emissions=config["emissions"],
            scratch=scratch_dir,
        log:
            f"{R}/logs/train/{RUN}.log",
        conda:
            ENV
        threads: 2
        resources:
            **cluster.train_resources(TRAIN),
        script:
            "../workflow_scripts/train.py"

else:

    # Several nodes: resources `mpi`, `nodes` and tasks make the Slurm plugin run this command in the
    # batch script, where `srun` starts one Lightning rank per device on every node.
    rule train:
        input:
            **TRAIN_INPUT,
        output:
            **TRAIN_OUTPUT,
        params:
            srun=cluster.srun_flags(TRAIN),
            args=lambda w, input, output, threads: cluster.train_args(
                w, input, output, threads, settings(w), scratch_dir(w), config["emissions"]
            ),
        log:
            f"{R}/logs/train/{RUN}.log",
        conda:
            ENV
        threads: 2
        resources:
            **cluster.train_resources(TRAIN),
        shell:
            "{resources.mpi} {params.srun} python -m archbench.training.cluster {params.args:q} 2> {log}"
