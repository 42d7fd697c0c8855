"""The report's questions, one :class:`~archbench.report.questions.base.Question` entry each.

A built-in question is a module of this package that defines ``QUESTION``; a plugin question is a
module (or a ``Question``) named by an ``archbench.questions`` entry point of another package. Both land
in :data:`QUESTIONS`, from which rules/report.smk generates the ``questions`` rule's inputs (the files of
the evaluations the questions read) and outputs (each question's figure and table, with its caption).
:func:`write_questions` (rule ``questions``) answers every question named in its outputs and writes
``questions.json``, which ``summary.md`` prints (:func:`summary_section`). A question without data still
gets its figure (saying why it is empty) and a sentence saying what to run, so the report's file set is
fixed.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from importlib.metadata import entry_points

from archbench.io import write_json
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import runs_frame

ENTRY_POINT_GROUP = "archbench.questions"
QUESTIONS: dict[str, Question] = {}

__all__ = ["QUESTIONS", "Inputs", "Question", "ordered", "register_question", "runs_frame", "summary_section",
           "write_questions"]  # fmt: skip


def register_question(question: Question) -> Question:
    """Add an entry; registering the same entry again is a no-op, another one under its name an error."""
    if QUESTIONS.get(question.name, question) is not question:
        raise ValueError(f"report question {question.name!r} is already registered by another entry")
    QUESTIONS[question.name] = question
    return question


def _entry(obj, where: str) -> Question:
    """The Question an entry point or a module names (a module: its ``QUESTION``)."""
    found = obj if isinstance(obj, Question) else getattr(obj, "QUESTION", None)
    if not isinstance(found, Question):
        raise TypeError(f"{where}: not a report Question, nor a module defining QUESTION = Question(...)")
    return found


def _load() -> None:
    """Register the built-in questions (this package's modules with a ``QUESTION``), then every
    ``archbench.questions`` entry point (installed, or a ``*.dist-info`` folder on PYTHONPATH). Plugin
    modules must stay matplotlib- and torch-free at import (the Snakefile parse imports them)."""
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "QUESTION"):
            register_question(_entry(module, module.__name__))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_question(_entry(ep.load(), f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value})"))
        except Exception as err:
            raise ImportError(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed: {err}") from err


def ordered() -> list[Question]:
    """The questions in answering order: by ``order``, the ``reads_answers`` ones last."""
    return sorted(QUESTIONS.values(), key=lambda q: (q.reads_answers, q.order))


def evaluations_read() -> list[str]:
    """Every evaluation some question reads the per-run files of (first-read order)."""
    return list(dict.fromkeys(e for q in ordered() for e in q.evaluations))


def output_paths(question: Question, plots: str, report: str) -> dict:
    """The rule outputs of ``question``: ``<name>`` (its figure), ``<name>_table`` (its CSV) and, with
    extra figures, ``<name>_figures``."""
    out = {question.name: f"{plots}/{question.figure}.png", f"{question.name}_table": f"{report}/{question.csv}.csv"}
    if question.extra_figures:
        out[f"{question.name}_figures"] = [f"{plots}/{stem}.png" for stem in question.extra_figures]
    return out


def caption_file(question: Question, folder: str) -> str:
    """The caption of ``question`` as a file (Snakemake's report reads captions from files): written to
    ``folder/<name>.rst`` when it differs, so an unchanged caption leaves the file alone."""
    path = os.path.abspath(os.path.join(folder, f"{question.name}.rst"))
    text = question.caption.strip() + "\n"
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
        os.makedirs(folder, exist_ok=True)
        from archbench.io import atomic_file

        with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    return path


def write_questions(metrics, files: dict, out: dict, report: dict, reproduce: dict | None = None) -> dict:
    """Answer every registered question named in ``out`` (``<name>`` its figure, ``<name>_table`` its
    table), in :func:`ordered` order, and write ``questions.json`` to ``out["json"]``.

    ``files`` maps an evaluation's name to its per-run files (one that did not run: absent or an empty
    list); ``report`` is the config's ``report`` block, ``reproduce`` its ``reproduce`` block."""
    runs = runs_frame(metrics)
    result = {}
    asked = [q for q in ordered() if q.name in out]
    for q in asked:
        inputs = Inputs(
            files={e: files.get(e) or [] for e in q.evaluations},
            runs=runs,
            report=report,
            reproduce=(reproduce or {}) if q.reads_answers else {},
            answers=dict(result) if q.reads_answers else {},
        )
        result[q.name] = q.answer(inputs, out[q.name], out[f"{q.name}_table"])
    result["plots"] = {q.name: out[q.name] for q in asked}
    write_json(result, out["json"])
    return result


def summary_section(questions_json: str | None, base: str) -> list[str]:
    """The summary.md lines for the questions (empty without questions.json)."""
    if not questions_json:
        return []
    with open(questions_json, encoding="utf-8") as fh:
        data = json.load(fh)
    lines = ["## The architecture questions", ""]
    for q, path in data["plots"].items():
        # no link to a placeholder figure: an unmeasured question's sentence says what would measure it
        measured = data[q].get("measured", "was not measured" not in data[q]["sentence"])
        lines.append(f"- {data[q]['sentence']}" + (f" ([plot]({os.path.relpath(path, base)}))" if measured else ""))
    return lines + [""]


_load()
