"""Which optional report inputs exist in this workflow (used by rules/report.smk at DAG time)."""

from __future__ import annotations


def writes(rules, filename: str) -> bool:
    """Whether some Snakemake rule declares an output named `filename` (e.g. the evaluation stage's
    per-run latency.json): the report then waits for those files and shows them, else skips them."""
    return any(str(out).rsplit("/", 1)[-1] == filename for rule in rules for out in rule.output)
