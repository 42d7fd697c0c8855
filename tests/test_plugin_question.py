"""Adding a report question is one module plus one entry-point line: a toy question defined outside the
package, registered through the `archbench.questions` entry point, gets its figure and table among the
report rule's outputs (with its caption) and its sentence in questions.json and summary.md, with no
edit to archbench."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from workflow_helpers import snakemake, tiny_config

# Stages as the built-in questions have them; matplotlib only in plot.
QUESTION = """
import pandas as pd

from archbench.report.questions import Question
from archbench.report.questions.runs import load


def table(inputs):
    rows = [{"arch": run["arch"], "seed": run["seed"], "entries": len(d["entries"])}
            for run, d in load(inputs.of("length"), inputs.runs)]
    return pd.DataFrame(rows, columns=["arch", "seed", "entries"])


def select(frame, inputs):
    return {"empty": "no length.json"} if frame.empty else {"per_arch": frame.groupby("arch")["entries"].sum()}


def plot(selected, png):
    from archbench.report.figures import pyplot, save

    fig, ax = pyplot().subplots()
    ax.bar(list(selected["per_arch"].index), list(selected["per_arch"]))
    save(fig, png)


def sentence(selected):
    if selected.get("empty"):
        return {"measured": False, "sentence": "Echo was not measured (length.enabled is false)."}
    per = selected["per_arch"]
    return {"sentence": "Echo: " + ", ".join(f"{a} {n} entries" for a, n in per.items()) + "."}


QUESTION = Question.of_module(__name__, "echo", "Echo", "Length entries per architecture (a plugin question).",
                              csv="echo_table", evaluations=("length",))
"""


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """A package as pip would install it: one module plus a dist-info folder declaring the entry point."""
    site = tmp_path / "site"
    files = {
        "echoq.py": textwrap.dedent(QUESTION),
        "echoq-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: echoq\nVersion: 0.1\n",
        "echoq-0.1.dist-info/entry_points.txt": "[archbench.questions]\necho = echoq\n",  # the one line
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


def _questions_job(text: str) -> dict:
    """The input and output lines of the dry run's `questions` job."""
    block = re.search(r"^rule questions:\n((?:\s+\w+: .*\n)+)", text, re.M).group(1)
    return {k: v.split(", ") for k, v in re.findall(r"^\s+(input|output): (.*)$", block, re.M)}


def test_the_entry_point_adds_the_questions_outputs_and_caption(plugin_env, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    proc = snakemake(work, "--dry-run", configfile=tiny_config(work))
    job = _questions_job(proc.stdout + proc.stderr)
    results = work / "results" / "report"
    assert str(results / "plots" / "echo.png") in job["output"]
    assert str(results / "echo_table.csv") in job["output"]
    assert str(results / "plots" / "length_extrapolation.png") in job["output"]  # beside the built-in ones
    # its evaluation's files are the rule's inputs: every run's length.json (4 runs)
    assert len([f for f in job["input"] if f.endswith("/length.json")]) == 4
    caption = work / ".snakemake" / "archbench" / "captions" / "echo.rst"
    assert caption.read_text() == "Length entries per architecture (a plugin question).\n"


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_the_plugin_question_is_answered_into_questions_json_and_the_summary(plugin_env, tmp_path):
    metrics, length = [], []
    for arch, n in (("retnet", 2), ("transformer", 3)):
        run = f"{arch}/p/seed~0"
        metrics.append(_write(tmp_path / "runs" / run / "metrics.json", {"arch": arch, "seed": 0, "val_loss": 1.0}))
        length.append(_write(tmp_path / "eval" / run / "length.json", {"entries": [{}] * n}))
    out = {
        "echo": str(tmp_path / "report" / "plots" / "echo.png"),
        "echo_table": str(tmp_path / "report" / "echo_table.csv"),
        "json": str(tmp_path / "report" / "questions.json"),
    }
    code = (
        "import json, sys; from archbench.report.questions import QUESTIONS, summary_section, write_questions; "
        "args = json.loads(sys.argv[1]); "
        "assert list(QUESTIONS)[-1] == 'echo' and 'matplotlib' not in sys.modules; "
        "write_questions(args['metrics'], {'length': args['length']}, args['out'], {}); "
        "print('\\n'.join(summary_section(args['out']['json'], args['base'])))"
    )
    payload = json.dumps({"metrics": metrics, "length": length, "out": out, "base": str(tmp_path / "report")})
    proc = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answers = json.loads(open(out["json"]).read())
    assert answers["echo"] == {"sentence": "Echo: retnet 2 entries, transformer 3 entries."}
    assert "- Echo: retnet 2 entries, transformer 3 entries. ([plot](plots/echo.png))" in proc.stdout.splitlines()
    assert open(out["echo"], "rb").read(4) == b"\x89PNG"
    assert open(out["echo_table"]).read().splitlines() == ["arch,seed,entries", "retnet,0,2", "transformer,0,3"]
