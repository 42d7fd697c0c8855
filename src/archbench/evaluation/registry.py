"""The evaluations of a trained run, one declarative entry each: the function to call, which config key
each of its arguments reads, what it writes, what it needs, when it applies, how the CLI shows its
result, how the report flattens its file, and its own config keys (the report questions name the
evaluations they read: archbench.report.questions).

rules/evaluate.smk generates one rule per entry (all through the one adapter workflow_scripts/
evaluation.py), rules/report.smk feeds each entry's files to the collect rule and the report questions that read them,
and the ``archbench`` CLI gets one subcommand per entry whose options are the entry's config keys. A
plugin registers its entry through the ``archbench.evaluations`` entry point (a module that calls
:func:`register_evaluation` on import) and takes exactly the built-in path.

Torch-free, like models/registry.py: a function in a module that imports torch is named by
:class:`Lazy`, imported on first call, so the Snakefile parse never imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

from archbench.data.sources import source_of
from archbench.evaluation.columns import harness_columns, latency_columns
from archbench.grid import grid_axes
from archbench.plugins import load_entry_points, load_ref
from archbench.training.cluster import gpus_per_node

ENTRY_POINT_GROUP = "archbench.evaluations"

# Inputs an evaluation may ask for besides the model (rule input name -> kind), and the keyword argument
# each kind is passed as (None: a dependency only, editing it reruns the evaluation):
#   tokens         the test split's token index (the tokens the run was tested on) -> tokens=path
#   tasks          the offline harness tasks' YAML files -> task_dirs=[their folder]
#   task_includes  the YAML files under eval.include_path -> (dependency only)
INPUTS = {"tokens": "tokens", "tasks": "task_dirs", "task_includes": None}

# Where every evaluation that runs a model runs: its device and dtype arguments, from these keys.
RUN_ON = {"device": "eval.device", "dtype": "eval.dtype"}


@dataclasses.dataclass(frozen=True)
class Lazy:
    """A function named ``"module:function"``, imported on its first call: how an entry names a function
    whose module imports torch (the Snakefile parse imports every entry, never torch)."""

    ref: str

    def __call__(self, *args, **kwargs):
        return load_ref(self.ref)(*args, **kwargs)


def show_json(out) -> None:
    """The CLI's default display of a result: its ``results`` section (else all of it) as JSON."""
    print(json.dumps(out.get("results", out) if isinstance(out, dict) else out, indent=2, default=str))


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One evaluation of a trained run.

    ``function(model_dir, out_<output>..., <inputs>..., threads, **arguments)`` measures and writes
    (:class:`archbench.evaluation.common.EvalRun` does what every evaluation shares). ``args`` maps each
    of its other arguments to the config key it reads (``"section.key"``; a section gives its dict), the
    one builder of the rule's and the CLI's arguments; an evaluation that runs a model (``model``) also
    gets :data:`RUN_ON`. ``outputs`` maps the rule's output name to the file written below the run's
    eval folder (the first is the main output). ``inputs`` maps a rule input name to a kind of
    :data:`INPUTS`. ``applies``: ``config -> bool`` (None: always runs). ``threads`` are CPU threads (on a
    GPU node: CPUs per GPU); ``model=True`` runs the model, so it gets the GPU when ``eval.device`` is
    cuda. ``timed``: it measures speed, which depends on the architecture and shape but not on the
    training settings or seed, so it runs once per architecture x shape (:func:`timing_point`), on the
    first seed, and every run of that shape reports its file.

    ``options``: how the CLI spells an argument when not ``--<key>`` (argument -> argparse settings:
    ``flags``, ``action``, ``type``, ``default``). ``show(result)`` prints a CLI result (default
    :func:`show_json`). ``flatten(data) -> {column: value}`` turns the main output into columns of the
    report's grid table (None: the file is not collected). ``after(model_dir, main_output)`` runs after
    the pipeline's job only (the harness puts its scores into the model card). ``schema_fragment``: the
    JSON-schema properties of the config keys the evaluation owns, under ``schema_section``."""

    name: str
    function: Callable
    args: dict
    outputs: dict
    help: str
    inputs: dict = dataclasses.field(default_factory=dict)
    applies: Callable | None = None
    threads: int = 1
    model: bool = True
    timed: bool = False
    options: dict = dataclasses.field(default_factory=dict)
    show: Callable = show_json
    flatten: Callable | None = None
    after: Callable | None = None
    schema_fragment: dict | None = None
    schema_section: str | None = None

    def __post_init__(self):
        unknown = set(self.inputs.values()) - set(INPUTS)
        if unknown:
            raise ValueError(f"evaluation {self.name!r}: unknown inputs {sorted(unknown)} (known: {list(INPUTS)})")
        if not self.outputs:
            raise ValueError(f"evaluation {self.name!r}: no outputs")

    @property
    def section(self) -> str:
        """The config section of its own keys (``schema_section``, else its name)."""
        return self.schema_section or self.name

    @property
    def config_keys(self) -> dict:
        """Every argument built from the config -> its key (:data:`RUN_ON` last when it runs a model)."""
        return {**self.args, **(RUN_ON if self.model else {})}

    def build_args(self, config: dict) -> dict:
        """Keyword arguments of the call from a (validated) pipeline config: the rule's and the CLI's."""
        return {arg: self.config_value(config, key) for arg, key in self.config_keys.items()}

    def config_value(self, config: dict, key: str):
        """The value of ``key`` ("section.key") in a validated config (fragments composed: every key present)."""
        for part in key.split("."):
            config = config[part]
        return config

    def applies_to(self, config: dict) -> bool:
        return True if self.applies is None else bool(self.applies(config))

    @property
    def files(self) -> list[str]:
        return list(self.outputs.values())

    def call_kwargs(self, inputs: dict, outputs: dict) -> dict:
        """The path arguments of the call from a job's inputs and outputs (by rule name), as the
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


def collected(evaluations) -> list[Evaluation]:
    """The ones whose main output the report's collect rule flattens into the grid table."""
    return [e for e in evaluations if e.flatten is not None]


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


def limit_option(text: str):
    """An eval.limit on the command line: a document count, or a fraction below 1."""
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def _set_of(items: dict, default: list, description: str, nonempty: bool = True) -> dict:
    """The schema of a list of distinct ``items``."""
    return {
        "type": "array",
        "items": items,
        **({"minItems": 1} if nonempty else {}),
        "uniqueItems": True,
        "default": default,
        "description": description,
    }


def _integer(default: int, description: str, **bounds) -> dict:
    return {"type": "integer", **bounds, "default": default, "description": description}


def _multipliers(description: str) -> dict:
    """Context lengths as multiples of the training length (length's and retrieval's)."""
    return _set_of({"type": "integer", "minimum": 1, "maximum": 1024}, [1, 2, 4, 8], description)


def _flag(default: bool, description: str) -> dict:
    return {"type": "boolean", "default": default, "description": description}


# ---- the config keys each built-in evaluation owns: its schema fragment, their one home (the config
# schema is composed from the base file and the fragments: archbench.config.load_schema)
_HARNESS_KEYS = {
    "tasks": _set_of(
        {"type": "string", "minLength": 1},
        ["archbench_ppl", "archbench_cloze", "archbench_lastword"],
        "lm-eval task, group or tag names. The default tasks are written by the pipeline from the held-out test split and run offline (tag `archbench` = all three): archbench_ppl (word/byte perplexity, bits per byte), archbench_cloze (true continuation vs continuations of other documents; acc, acc_norm), archbench_lastword (LAMBADA-style last-word prediction; acc, perplexity). lm-eval's hub tasks (hellaswag, lambada_openai, arc_easy, piqa, wikitext, ...) work by name with network access (or a cached dataset); offline they fail with a clear message.",
    ),
    "include_path": {
        "type": ["string", "null"],
        "default": None,
        "description": "Directory of extra lm-eval task YAMLs (searched before lm-eval's built-in tasks).",
    },
    "num_fewshot": {
        "type": ["integer", "null"],
        "minimum": 0,
        "default": None,
        "description": "Few-shot examples per prompt (null = each task's own setting, 0 for the default tasks).",
    },
    "limit": {
        "type": ["integer", "number", "null"],
        "exclusiveMinimum": 0,
        "default": 40,
        "description": "Documents per task (integer) or fraction of each task (number < 1); null = all.",
    },
    "batch_size": _integer(8, "lm-eval batch size.", minimum=1),
    "bootstrap_iters": _integer(
        100, "Bootstrap iterations for the standard errors of non-mean metrics (0 = no stderr at all).", minimum=0
    ),
}
_LATENCY_KEYS = {
    "contexts": _set_of(
        {"type": "integer", "minimum": 1},
        [64, 256, 1024, 2048],
        "Context lengths (tokens) to prefill before decoding; may exceed the trained seq_len.",
    ),
    "batch_sizes": _set_of({"type": "integer", "minimum": 1}, [1], "Batch sizes to measure at every context."),
    "new_tokens": _integer(16, "Decode steps timed per trial (each step timed alone).", minimum=1),
    "trials": _integer(3, "Timed trials (prefill + new_tokens steps) per context x batch size.", minimum=1),
    "warmup": _integer(1, "Untimed warm-up trials per context x batch size.", minimum=0),
    "recompute_max_context": _integer(
        256, "Also time the original method (full forward per new token) at contexts up to this (0 = never).", minimum=0
    ),
}
_THROUGHPUT_KEYS = {
    "batch_sweep": _set_of(
        {"type": "integer", "minimum": 1, "maximum": 4096},
        [1, 2, 4, 8, 16, 32, 64],
        "Batch sizes of rule throughput (decode tokens/s and state / KV memory vs batch at latency.batch_context, cached mode only, RetNet paper Fig. 6); empty = no throughput rule.",
        nonempty=False,
    ),
    "batch_context": _integer(256, "Prefilled context of the batch sweep (tokens).", minimum=1),
}
_LENGTH_KEYS = {
    "enabled": _flag(True, "Run rule length for every run."),
    "multipliers": _multipliers("Contexts as multiples of the training seq_len."),
    "max_tokens": _integer(
        32768, "Test tokens read per multiplier (the same budget at every context length).", minimum=1
    ),
    "batch_size": _integer(8, "Windows per forward.", minimum=1),
}
_RETRIEVAL_KEYS = {
    "enabled": _flag(False, "Run rule retrieval for every run (needs data.source mqar)."),
    "multipliers": _multipliers("Context lengths as multiples of the training seq_len."),
    "tasks": _set_of(
        {"type": "string", "enum": ["phonebook", "passkey", "copy"]},
        ["phonebook", "passkey", "copy"],
        "phonebook = as many key-value pairs as fill the context, then one key queried; passkey = one pair at a random depth in filler, queried at the end; copy = the pairs, a separator, the pairs again (every value must be reproduced: exact match of the string).",
    ),
    "examples": _integer(
        100,
        "Fresh examples per task and length, one exact-match answer each (the n of the Wilson interval).",
        minimum=1,
    ),
    "seed": _integer(
        0,
        "Seed of the examples (a stream apart from the training documents and rule recall's).",
        minimum=0,
        maximum=4294967295,
    ),
    "batch_size": _integer(16, "Examples per forward.", minimum=1),
}
_GENERATE_KEYS = {
    "prompts": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "default": ["The", "In the beginning", "Once upon a time", "It was a"],
        "description": "Prompts to complete, one sample each.",
    },
    "max_new_tokens": _integer(48, "Tokens generated per prompt.", minimum=1, maximum=4096),
    "do_sample": _flag(False, "Sample (with temperature / top_p / top_k) instead of greedy decoding."),
    "temperature": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 1.0,
        "description": "Sampling temperature (do_sample only).",
    },
    "top_p": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
        "default": 1.0,
        "description": "Nucleus sampling mass (do_sample only; 1.0 = off).",
    },
    "top_k": _integer(0, "Sample among the k most likely tokens (do_sample only; 0 = off).", minimum=0),
    "seed": _integer(0, "Seed of prompt i is seed + i (sampling is reproducible).", minimum=0, maximum=4294967295),
}


_EVAL = "archbench.evaluation"

register_evaluation(
    Evaluation(
        "harness",
        Lazy(f"{_EVAL}.harness:run_harness"),
        {
            "tasks": "eval.tasks",
            "include_path": "eval.include_path",
            "num_fewshot": "eval.num_fewshot",
            "limit": "eval.limit",
            "batch_size": "eval.batch_size",
            "bootstrap_iters": "eval.bootstrap_iters",
            "seed": "seed",
        },
        {"json": "harness.json"},
        help="lm-evaluation-harness scores (harness.json)",
        inputs={"tasks": "tasks", "include": "task_includes"},
        threads=1,
        options={"limit": {"type": limit_option}},
        flatten=harness_columns,
        after=Lazy("archbench.training.modelcard:add_harness_scores"),  # the card's model-index
        schema_fragment=_HARNESS_KEYS,
        schema_section="eval",
    )
)
# latency and throughput are timed: 2 threads (all of the default run's cores) keep Snakemake from
# scheduling another job beside them. The untimed ones (harness, generate, length) take 1 thread: two run
# side by side, overlapping their few seconds of imports (the default run with two learning rates:
# 10 min 8 s with harness and length on 2 threads).
register_evaluation(
    Evaluation(
        "latency",
        Lazy(f"{_EVAL}.latency:run_latency"),
        {
            "contexts": "latency.contexts",
            "batch_sizes": "latency.batch_sizes",
            "new_tokens": "latency.new_tokens",
            "trials": "latency.trials",
            "warmup": "latency.warmup",
            "recompute_max_context": "latency.recompute_max_context",
            "seed": "seed",
        },
        {"json": "latency.json"},
        help="prefill / per-token decode time and memory vs context (latency.json)",
        threads=2,
        timed=True,
        show=Lazy(f"{_EVAL}.latency:show_latency"),
        flatten=latency_columns,
        schema_fragment=_LATENCY_KEYS,
    )
)
register_evaluation(
    Evaluation(
        "generate",
        Lazy(f"{_EVAL}.generate:run_generate"),
        {
            "prompts": "generate.prompts",
            "max_new_tokens": "generate.max_new_tokens",
            "do_sample": "generate.do_sample",
            "temperature": "generate.temperature",
            "top_p": "generate.top_p",
            "top_k": "generate.top_k",
            "seed": "generate.seed",
        },
        {"txt": "samples.txt", "csv": "samples.csv"},
        help="text samples through generate() (samples.txt / samples.csv)",
        threads=1,
        # --prompt repeated; not given: the schema's prompts
        options={
            "prompts": {"flags": ["--prompt"], "action": "append", "default": None},
            "do_sample": {"flags": ["--sample", "--do-sample"]},
        },
        show=Lazy(f"{_EVAL}.generate:show_samples"),
        schema_fragment=_GENERATE_KEYS,
    )
)
register_evaluation(
    Evaluation(
        "length",
        Lazy(f"{_EVAL}.length:run_length"),
        {"multipliers": "length.multipliers", "max_tokens": "length.max_tokens", "batch_size": "length.batch_size"},
        {"json": "length.json"},
        help="loss per position bucket at k x the training length (length.json)",
        inputs={"tokens": "tokens"},
        applies=length_enabled,
        threads=1,
        schema_fragment=_LENGTH_KEYS,
    )
)
register_evaluation(
    Evaluation(
        "throughput",
        Lazy(f"{_EVAL}.throughput:run_throughput"),
        {
            "batch_sizes": "latency.batch_sweep",
            "context": "latency.batch_context",
            "new_tokens": "latency.new_tokens",
            "trials": "latency.trials",
            "warmup": "latency.warmup",
            "seed": "seed",
        },
        {"json": "throughput.json"},
        help="decode tokens/s and state memory vs batch size at a fixed context (throughput.json)",
        applies=batch_sweep,
        threads=2,
        timed=True,
        schema_fragment=_THROUGHPUT_KEYS,  # beside latency's keys, whose timing settings it shares
        schema_section="latency",
    )
)
register_evaluation(
    Evaluation(
        "recall",
        Lazy(f"{_EVAL}.recall:run_recall"),
        {"mqar_cfg": "data.mqar"},  # the generator's settings: the mqar data source owns the keys
        {"json": "recall.json"},
        help="associative recall accuracy per number of key-value pairs, MQAR runs only (recall.json)",
        applies=recall_data,
        threads=1,
    )
)
register_evaluation(
    Evaluation(
        "retrieval",
        Lazy(f"{_EVAL}.retrieval:run_retrieval"),
        {
            "multipliers": "retrieval.multipliers",
            "tasks": "retrieval.tasks",
            "examples": "retrieval.examples",
            "seed": "retrieval.seed",
            "batch_size": "retrieval.batch_size",
            "vocab_size": "data.mqar.vocab_size",  # the tasks' words are the run's MQAR vocabulary
            "random_fillers": "data.mqar.random_fillers",  # and its filler
        },
        {"json": "retrieval.json"},
        help="phonebook / passkey / copy exact-match accuracy and state bytes at 1x-8x the training length, "
        "MQAR runs only (retrieval.json)",
        applies=retrieval_enabled,
        threads=1,
        schema_fragment=_RETRIEVAL_KEYS,
    )
)


def load_plugins() -> None:
    """Import every ``archbench.evaluations`` entry point (installed, or a ``*.dist-info`` folder on
    PYTHONPATH): its module calls :func:`register_evaluation` on import, or the entry names a function
    that does. Runs once, on first import, so the Snakefile parse, the jobs and the CLI see the same
    evaluations. Plugin modules must stay torch-free at import time."""
    load_entry_points(ENTRY_POINT_GROUP)


load_plugins()
