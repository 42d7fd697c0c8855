"""The evaluations of a trained run, one entry each: what to call, with which arguments, what it writes,
what it needs, when it applies and which report question reads it.

rules/evaluate.smk generates one rule per entry, rules/report.smk feeds each entry's files to its report
question, and the ``archbench`` CLI gets one subcommand per entry. Adding an evaluation is one module
(a function ``run_x(model_dir, <outputs>, <inputs>, threads=..., **args)``) plus one entry here, or in
another package through the ``archbench.evaluations`` entry point (a module that calls
:func:`register_evaluation` on import).

Torch-free, like models/registry.py: functions and builders are ``"module:function"`` strings imported
on first use, so the Snakefile parse never imports torch.
"""

from __future__ import annotations

import dataclasses
import os

from archbench.data.sources import source_of
from archbench.grid import grid_axes
from archbench.plugins import load_entry_points
from archbench.plugins import load_ref as load
from archbench.training.cluster import gpus_per_node

ENTRY_POINT_GROUP = "archbench.evaluations"

# Inputs an evaluation may ask for besides the model (rule input name -> kind), and the keyword argument
# each kind is passed as (None: a dependency only, editing it reruns the evaluation):
#   tokens         the test split's token index (the tokens the run was tested on) -> tokens=path
#   tasks          the offline harness tasks' YAML files -> task_dirs=[their folder]
#   task_includes  the YAML files under eval.include_path -> (dependency only)
INPUTS = {"tokens": "tokens", "tasks": "task_dirs", "task_includes": None}


# workflow_scripts/evaluation.py: every generated rule's script, which dispatches by rule name to an
# entry's own adapter, or calls a plugin's function itself
GENERIC_SCRIPT = "evaluation.py"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One evaluation of a trained run.

    ``outputs`` maps the rule's output name to the file written below the run's eval folder; the
    function gets it as ``out_<name>`` (the first is the main output). ``inputs`` maps a rule input
    name to a kind of :data:`INPUTS`. ``args`` builds the remaining keyword arguments from the pipeline config (the same call
    in the rule and the CLI). ``applies`` names a ``config -> bool`` function (None: always runs).
    ``question`` is the report module whose ``write_question`` reads the files (None: no question page).
    ``threads`` are CPU threads (on a GPU node: CPUs per GPU); ``model=True`` means it runs the model,
    so it gets the GPU when ``eval.device`` is cuda. ``script`` is the Snakemake adapter below
    workflow_scripts/ (plugins use the generic one). ``timed``: it measures speed, which depends on the
    architecture and shape but not on the training settings or seed, so it runs once per architecture x
    shape (:func:`timing_point`), on the first seed, and every run of that shape reports its file."""

    name: str
    function: str
    args: str
    outputs: dict
    help: str
    inputs: dict = dataclasses.field(default_factory=dict)
    applies: str | None = None
    question: str | None = None
    threads: int = 1
    model: bool = True
    script: str = GENERIC_SCRIPT
    timed: bool = False

    def __post_init__(self):
        unknown = set(self.inputs.values()) - set(INPUTS)
        if unknown:
            raise ValueError(f"evaluation {self.name!r}: unknown inputs {sorted(unknown)} (known: {list(INPUTS)})")
        if not self.outputs:
            raise ValueError(f"evaluation {self.name!r}: no outputs")

    def call(self):
        return load(self.function)

    def build_args(self, config: dict) -> dict:
        """Keyword arguments of the call from a (validated) pipeline config."""
        return load(self.args)(config)

    def applies_to(self, config: dict) -> bool:
        return True if self.applies is None else bool(load(self.applies)(config))

    @property
    def files(self) -> list[str]:
        return list(self.outputs.values())

    def call_kwargs(self, inputs: dict, outputs: dict) -> dict:
        """The path arguments of the call from a job's inputs and outputs (by rule name), as the generic
        adapter passes them (model_dir is the folder of input ``model``)."""
        kwargs = {"model_dir": os.path.dirname(inputs["model"])}
        kwargs.update({f"out_{name}": outputs[name] for name in self.outputs})
        for name, kind in self.inputs.items():
            if INPUTS[kind] == "task_dirs":
                kwargs["task_dirs"] = [os.path.dirname(inputs[name][0])]
            elif INPUTS[kind]:
                kwargs[INPUTS[kind]] = inputs[name]
        return kwargs


EVALUATIONS: dict[str, Evaluation] = {}


def register_evaluation(evaluation: Evaluation) -> Evaluation:
    """Add an entry; registering the same entry again is a no-op, another one under its name an error."""
    if EVALUATIONS.get(evaluation.name, evaluation) != evaluation:
        raise ValueError(f"evaluation {evaluation.name!r} is already registered with other settings")
    EVALUATIONS[evaluation.name] = evaluation
    return evaluation


def get_evaluation(name: str) -> Evaluation:
    try:
        return EVALUATIONS[name]
    except KeyError:
        raise KeyError(f"unknown evaluation {name!r} (known: {', '.join(EVALUATIONS)})") from None


def applicable(config: dict) -> list[Evaluation]:
    """The evaluations the pipeline runs for this config, in registry order."""
    return [e for e in EVALUATIONS.values() if e.applies_to(config)]


def eval_gpus(config: dict) -> int:
    """GPUs of one job that runs a model for evaluation: one when ``eval.device`` is cuda, or when it is
    auto and training runs on GPUs (the evaluation then finds CUDA on its node as training did)."""
    device = config["eval"]["device"]
    return int(device == "cuda" or (device == "auto" and gpus_per_node(config["training"]) > 0))


def timing_point(config: dict, point: dict) -> dict:
    """The grid point whose run a timed evaluation measures for ``point``: the same shape (every model
    axis as in ``point``), every training axis (learning rate, weight decay, ...: what is trained, not
    what is built) at its first grid value. One timing per architecture x shape, not per learning rate."""
    training = {"learning_rate", *config.get("training", {})}
    axes = grid_axes(config)
    return {k: (axes[k][0] if k in training and k in axes else v) for k, v in point.items()}


# ---- when an evaluation applies (config -> bool)
def length_enabled(config: dict) -> bool:
    return bool(config["length"]["enabled"])


def batch_sweep(config: dict) -> bool:
    return bool(config["latency"]["batch_sweep"])


def recall_data(config: dict) -> bool:
    # Recall scores exact answer positions: the data source says whether its documents have them.
    return source_of(config["data"]).answer_positions


def retrieval_enabled(config: dict) -> bool:
    # Its tasks are built on the MQAR vocabulary, which a source with answer positions has
    # (archbench.config refuses retrieval.enabled with any other source).
    return bool(config["retrieval"]["enabled"]) and recall_data(config)


_CALLS = "archbench.evaluation.calls"
_Q = "archbench.report.questions"

register_evaluation(
    Evaluation(
        "harness",
        "archbench.evaluation.harness:run_harness",
        f"{_CALLS}:harness_args",
        {"json": "harness.json"},
        help="lm-evaluation-harness scores (harness.json)",
        inputs={"tasks": "tasks", "include": "task_includes"},
        threads=1,
        script="harness.py",
    )
)
# latency and throughput are timed: 2 threads (all of the default run's cores) keep Snakemake from
# scheduling another job beside them. The untimed ones (harness, generate, length) take 1 thread: two run
# side by side, overlapping their few seconds of imports (the default run with two learning rates:
# 10 min 8 s with harness and length on 2 threads).
register_evaluation(
    Evaluation(
        "latency",
        "archbench.evaluation.latency:run_latency",
        f"{_CALLS}:latency_args",
        {"json": "latency.json"},
        help="prefill / per-token decode time and memory vs context (latency.json)",
        threads=2,
        timed=True,
        script="latency.py",
    )
)
register_evaluation(
    Evaluation(
        "generate",
        "archbench.evaluation.generate:run_generate",
        f"{_CALLS}:generate_args",
        {"txt": "samples.txt", "csv": "samples.csv"},
        help="text samples through generate() (samples.txt / samples.csv)",
        threads=1,
        script="generate.py",
    )
)
register_evaluation(
    Evaluation(
        "length",
        "archbench.evaluation.length:run_length",
        f"{_CALLS}:length_args",
        {"json": "length.json"},
        help="loss per position bucket at k x the training length (length.json)",
        inputs={"tokens": "tokens"},
        applies=f"{__name__}:length_enabled",
        question=f"{_Q}.length",
        threads=1,
        script="length.py",
    )
)
register_evaluation(
    Evaluation(
        "throughput",
        "archbench.evaluation.throughput:run_throughput",
        f"{_CALLS}:throughput_args",
        {"json": "throughput.json"},
        help="decode tokens/s and state memory vs batch size at a fixed context (throughput.json)",
        applies=f"{__name__}:batch_sweep",
        question=f"{_Q}.throughput",
        threads=2,
        timed=True,
        script="throughput.py",
    )
)
register_evaluation(
    Evaluation(
        "recall",
        "archbench.evaluation.recall:run_recall",
        f"{_CALLS}:recall_args",
        {"json": "recall.json"},
        help="associative recall accuracy per number of key-value pairs, MQAR runs only (recall.json)",
        applies=f"{__name__}:recall_data",
        question=f"{_Q}.recall",
        threads=1,
        script="recall.py",
    )
)
register_evaluation(
    Evaluation(
        "retrieval",
        "archbench.evaluation.retrieval:run_retrieval",
        f"{_CALLS}:retrieval_args",
        {"json": "retrieval.json"},
        help="phonebook / passkey / copy exact-match accuracy and state bytes at 1x-8x the training length, "
        "MQAR runs only (retrieval.json)",
        applies=f"{__name__}:retrieval_enabled",
        question=f"{_Q}.retrieval",
        threads=1,
    )
)


def load_plugins() -> None:
    """Import every ``archbench.evaluations`` entry point (installed, or a ``*.dist-info`` folder on
    PYTHONPATH): its module calls :func:`register_evaluation` on import, or the entry names a function
    that does. Runs once, on first import, so the Snakefile parse, the jobs and the CLI see the same
    evaluations. Plugin modules must stay torch-free at import time."""
    load_entry_points(ENTRY_POINT_GROUP)


load_plugins()
