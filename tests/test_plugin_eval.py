"""Adding an evaluation is one module (its entry and function) plus the entry-point line: a toy evaluation
defined outside the package, with a config option of its own, registered through the
`archbench.evaluations` entry point, gets its rule (one job per run), its CLI subcommand with its
option, and feeds the report's questions rule, with no edit to archbench."""

import os
import subprocess
import sys
import textwrap

import pytest

from workflow_helpers import dry_run_counts, tiny_config

# One file: the entry and its function, torch-free at import (the Snakefile parse imports it); the run
# context loads the model (and torch) when the function runs. Its option `tokencount.windows` is its own: declared by
# its schema fragment, not by archbench's schema.
ENTRY = """
from archbench.evaluation.common import EvalRun
from archbench.evaluation.registry import Evaluation, register_evaluation


def run_tokencount(model_dir, out_json, tokens, windows, device="auto", dtype="fp32", threads=None):
    with EvalRun("tokencount", locals()) as run:
        model = run.model
        return run.finish({"arch": model.arch, "windows": windows, "tokens_index": tokens, "dtype": dtype,
                           "context": int(model.config.max_position_embeddings), "device": str(run.device)})


register_evaluation(Evaluation(
    "tokencount", run_tokencount, {"windows": "tokencount.windows"}, {"json": "tokencount.json"},
    help="tokens the model sees per test window (tokencount.json)", inputs={"tokens": "tokens"},
    threads=1,
    schema_fragment={"windows": {"type": "integer", "minimum": 1, "default": 3, "description": "Windows to count."}}))
"""
QUESTION = """
import pandas as pd

from archbench.report.questions import Question


def table(inputs):
    return pd.DataFrame({"file": sorted(inputs.of("tokencount"))})


def select(frame, inputs):
    return {"n": len(frame)}


def plot(selected, png):
    from archbench.report.figures import pyplot, save

    fig, ax = pyplot().subplots()
    save(fig, png)


def sentence(selected):
    return {"sentence": f"Token count measured for {selected['n']} runs."}


QUESTION = Question.of_module(__name__, "tokencount", "Token count", "Tokens per test window.", evaluations=("tokencount",))
"""


def write_plugin(site):
    """A package as pip would install it: modules plus a dist-info folder declaring the entry points."""
    (site / "toyeval.py").write_text(textwrap.dedent(ENTRY))
    (site / "toyeval_question.py").write_text(textwrap.dedent(QUESTION))
    info = site / "toyeval-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyeval\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[archbench.evaluations]\ntokencount = toyeval\n\n[archbench.questions]\ntokencount = toyeval_question\n"
    )


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


def test_the_entry_point_adds_a_rule_and_a_cli_subcommand(plugin_env, tmp_path):
    code = (
        "import sys; from archbench.evaluation.registry import EVALUATIONS; "
        "assert list(EVALUATIONS)[-1] == 'tokencount' and 'torch' not in sys.modules; "
        "from archbench.cli import _config, _parser, main; "
        "a = _parser().parse_args(['tokencount', 'M', '--tokens', 't', '--windows', '5']); "
        "print(EVALUATIONS['tokencount'].build_args(_config(a))); "
        "main(['tokencount', '--help'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built, help_text = proc.stdout.split("\n", 1)
    assert built == "{'windows': 5, 'device': 'auto', 'dtype': 'fp32'}"
    help_text = " ".join(help_text.split())
    assert "--tokens INDEX" in help_text and "--windows WINDOWS Windows to count. (default: 3)" in help_text
    work = tmp_path / "w"
    work.mkdir()
    counts = dry_run_counts(work, configfile=tiny_config(work))
    assert counts["tokencount"] == counts["train"] == 4
