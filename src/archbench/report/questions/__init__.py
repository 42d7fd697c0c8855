"""The architecture questions: length extrapolation, scaling, recall, long-context retrieval, decode throughput
vs batch, compute.

One module per question (``QUESTIONS``: name -> module). Each module has ``EVALUATION`` (the name of
the evaluation whose per-run files it reads, or None) and ``answer(files, runs, png, csv, **settings)``
returning a dict with the numbers and one ``sentence`` computed from them. :func:`write_questions`
(rule ``questions``) writes every question's figure and table and ``questions.json``, which
``summary.md`` prints (:func:`summary_section`). A question without data still gets its figure
(saying why it is empty) and a sentence saying what to run, so the report's file set is fixed.
A plugin evaluation adds its question through ``extra`` ({name: "module"}).
"""

from __future__ import annotations

import importlib
import json
import os

from archbench.io import write_json
from archbench.report.questions import compute, hybrid, length, recall, reproduction, retrieval, scaling, throughput
from archbench.report.questions.runs import runs_frame

# reproduction last: it reads the other questions' answers (scaling's held-out check)
QUESTIONS = {
    "length": length,
    "scaling": scaling,
    "recall": recall,
    "retrieval": retrieval,
    "throughput": throughput,
    "compute": compute,
    "hybrid": hybrid,
    "reproduction": reproduction,
}

__all__ = ["QUESTIONS", "runs_frame", "summary_section", "write_questions"]


def write_questions(
    metrics,
    files: dict,
    out: dict,
    max_params: float = 1e12,
    headline_multiplier: int = 4,
    extra: dict[str, str] | None = None,
    reproduce: dict | None = None,
) -> dict:
    """Every figure / table named in ``out`` (per question ``<name>`` and ``<name>_table``, plus
    ``json``) and ``questions.json``.

    ``files`` maps an evaluation's name (``length``, ``throughput``, ``recall``, ``retrieval``, a plugin's) to its
    per-run output files; an evaluation that did not run is absent or an empty list. ``extra``:
    {question name: importable module} of plugin questions, answered like the built-in ones."""
    modules = {**QUESTIONS, **{name: importlib.import_module(ref) for name, ref in (extra or {}).items()}}
    runs = runs_frame(metrics)
    settings = {"max_params": max_params, "headline_multiplier": headline_multiplier}
    result = {}
    modules = {n: m for n, m in modules.items() if n in out or not getattr(m, "OPTIONAL_OUTPUT", False)}
    for name, module in modules.items():
        if hasattr(module, "EVALUATIONS"):
            given = {e: files.get(e) for e in module.EVALUATIONS}
        else:
            given = files.get(module.EVALUATION) if module.EVALUATION else None
        more = (
            {"reproduce": reproduce or {}, "answers": dict(result)} if getattr(module, "READS_ANSWERS", False) else {}
        )
        result[name] = module.answer(given, runs, out[name], out[f"{name}_table"], **settings, **more)
    result["plots"] = {name: out[name] for name in modules}
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
