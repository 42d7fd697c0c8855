"""Decode throughput vs batch size at one context (RetNet paper Fig. 6): ``run_throughput`` -> ``throughput.json``.

The cached decoding mode of the architecture (``state`` in the registry: RetNet's O(1) recurrent
state, a Transformer's KV cache) is timed at a fixed prefilled context (``latency.batch_context``)
for every batch size in ``latency.batch_sweep``, with :func:`archbench.evaluation.latency.measure`
(same warm-up, trials and per-step timing as rule ``latency``). A recurrent model's state does not
grow with the context, so its tokens/s keeps rising with the batch where a KV cache's memory
traffic grows with batch x context.

Schema: ``{"arch", "context", "device", "threads", "params", "max_seq_len",
"rows": [latency entry + {"state_bytes_per_sequence"}, ...]}`` with one row per batch size (a row
with ``skipped`` when the model refused the context, e.g. learned positions past ``max_seq_len``).
"""

from __future__ import annotations

import logging

from archbench.evaluation.common import EvalRun, arch_of, max_context
from archbench.evaluation.latency import measure
from archbench.models.registry import get_arch


def run_throughput(
    model_dir: str,
    out_json: str | None,
    batch_sizes=(1, 2, 4, 8, 16, 32, 64),
    context: int = 256,
    new_tokens: int = 16,
    trials: int = 3,
    warmup: int = 1,
    device: str = "auto",
    dtype: str = "fp32",
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    with EvalRun("throughput", locals()) as run:
        model = run.model
        mode = get_arch(arch_of(model)).state  # "recurrent" | "kv_cache": the latency modes of the same names
        rows = []
        for batch in sorted(set(batch_sizes)):
            row = measure(model, mode, context, batch, new_tokens, trials, warmup, run.device, seed)
            if row.get("state_bytes"):
                row["state_bytes_per_sequence"] = row["state_bytes"] / batch
            rows.append(row)
            logging.getLogger(__name__).info("throughput %s", row)
        return run.finish(
            {
                "arch": arch_of(model),
                "context": context,
                "device": str(run.device),
                "threads": run.threads,
                "params": run.params,
                "max_seq_len": max_context(model),
                "rows": rows,
            }
        )
