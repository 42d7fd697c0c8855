"""What a report question is: one entry, built-in or plugin alike.

A question runs in four stages, each a plain function of the one before, so every stage but ``plot`` is
tested without matplotlib (``plot`` is the only one that imports it):

- ``table(inputs) -> DataFrame``: the rows the question reads, from the runs and its evaluations' files;
- ``select(frame, inputs) -> dict``: what the figure and the sentence show (the grid point per
  architecture, the fits, the verdicts), with the CSV to write under ``"csv"`` (``frame`` when absent)
  and, when there is nothing to show, the reason under ``"empty"`` (the runner then draws a figure
  saying so instead of calling ``plot``);
- ``plot(selected, png)``: the figure (PNG + SVG);
- ``sentence(selected) -> dict``: the answer written to questions.json: its numbers and one
  ``sentence`` computed from them (``measured: False`` keeps summary.md from linking a placeholder).

The entry also names the question's outputs (``plots/<figure>.png``, ``<csv>.csv`` in the report
folder, any ``extra_figures``), the evaluations whose per-run files it reads and its caption (the text
of the HTML report's caption, reStructuredText with Snakemake's Jinja ``snakemake.config``), from which
rules/report.smk generates the ``questions`` rule's inputs and outputs.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import pandas as pd

from archbench.report.figures import empty, write_csv


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a question's stages read: ``files`` maps each evaluation the question reads to its per-run
    files (an evaluation that did not run: an empty list), ``runs`` the runs (one row per metrics.json,
    :func:`archbench.report.questions.runs.runs_frame`), ``report`` the config's ``report`` block,
    ``reproduce`` the config's ``reproduce`` block and ``answers`` the answers of the questions before
    (for ``reads_answers`` questions)."""

    files: dict
    runs: pd.DataFrame
    report: dict
    reproduce: dict = dataclasses.field(default_factory=dict)
    answers: dict = dataclasses.field(default_factory=dict)

    def of(self, evaluation: str) -> list:
        """The per-run files of ``evaluation`` (empty when it did not run)."""
        return list(self.files.get(evaluation) or [])


@dataclasses.dataclass(frozen=True)
class Question:
    """One report question (see the module docstring for the stages). ``title`` is its subcategory in
    the HTML report; ``order`` places it in questions.json and summary.md (built-ins 10-80, plugins
    after them by default); a ``reads_answers`` question runs after every other one and gets their
    answers (the reproduction question reads the scaling question's held-out check)."""

    name: str
    title: str
    caption: str
    figure: str
    csv: str
    table: Callable[[Inputs], pd.DataFrame]
    select: Callable[[pd.DataFrame, Inputs], dict]
    plot: Callable[[dict, str], None]
    sentence: Callable[[dict], dict]
    evaluations: tuple[str, ...] = ()
    extra_figures: tuple[str, ...] = ()
    reads_answers: bool = False
    order: int = 100

    @classmethod
    def of_module(cls, module: str, name: str, title: str, caption: str, **fields) -> Question:
        """The entry of the question module ``module`` (pass ``__name__``): its functions ``table``,
        ``select``, ``plot`` and ``sentence`` are the stages; ``figure`` and ``csv`` default to ``name``."""
        stages = {stage: getattr(sys.modules[module], stage) for stage in ("table", "select", "plot", "sentence")}
        files = {"figure": fields.pop("figure", name), "csv": fields.pop("csv", name)}
        return cls(name=name, title=title, caption=caption, **files, **stages, **fields)

    def answer(self, inputs: Inputs, png: str, csv: str) -> dict:
        """Run the stages: write the table to ``csv`` and the figure to ``png``; return the answer."""
        frame = self.table(inputs)
        selected = self.select(frame, inputs)
        write_csv(selected.get("csv", frame), csv)
        if selected.get("empty"):
            empty(png, selected["empty"])
        else:
            self.plot(selected, png)
        return self.sentence(selected)
