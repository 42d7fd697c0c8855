"""Evaluation of trained runs (rules/evaluate.smk, and the ``archbench`` command line).

- ``tasks.build_tasks``: offline lm-eval tasks (.jsonl + .yaml) made from the held-out test split.
- ``harness.run_harness``: lm-evaluation-harness scores -> ``harness.json``.
- ``latency.run_latency``: prefill / per-token decode time and memory vs context -> ``latency.json``.
- ``generate.run_generate``: text samples through ``generate()`` -> ``samples.txt`` / ``samples.csv``.

Each module documents the schema of the file it writes and keeps only its measurement:
``common.EvalRun`` does what every evaluation shares (settings, timer, model load, threads, provenance,
the atomic write), and each one's entry in ``registry`` says how the pipeline and the CLI call it.
Submodules are imported on demand: lm-eval alone costs seconds and about 1 GB to import, and only the
harness needs it.
"""
