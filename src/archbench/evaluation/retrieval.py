"""Long-context retrieval of a run trained on ``data.source: mqar`` -> ``retrieval.json`` (rule ``retrieval``).

Phonebook lookup, passkey (needle) retrieval and copying (:mod:`archbench.data.retrieval`: the tasks on
the MQAR vocabulary) at ``k x`` the training length for every ``k`` in ``retrieval.multipliers``
(training length = the model's ``max_seq_len``), ``retrieval.examples`` fresh examples per task and
length. Scoring is exact match of the greedy answer: the model reads each example once (the answers
are in the input, as in MQAR training) and an example is right when the argmax at the position before
each of its answers is that answer. For copy's several answers this equals greedy decoding with the
keys given: when every teacher-forced argmax is right, greedy decoding reproduces the string, and the
first wrong argmax is where greedy decoding would go wrong too.

Past the training length a model reads as rule length does (:func:`archbench.evaluation.length.refuses`
and ``_mode``: RetNet chunkwise, learned absolute positions skipped). ``state_bytes`` is the decoding
state per sequence after reading an example of that length (recurrent state, or KV cache), as
rule recall measures it: a fixed-state model carries the same bytes at every length while the content
grows (``pairs``).

Schema::

    {"arch", "params", "seq_len", "vocab_size", "random_fillers",
     "entries": [{"task", "multiplier", "context",     # context = multiplier x seq_len tokens per example
                  "pairs",                             # key-value pairs an example holds (its content)
                  "n_examples", "correct", "accuracy", # exact-match examples (one scored unit each)
                  "interval": [low, high],             # 95% Wilson interval of accuracy
                  "answers", "answer_accuracy",        # every scored token (copy: the string's values)
                  "chance", "mode", "state_bytes"}
                 | {"task", "multiplier", "context", "skipped": why}],
     "provenance": {...}}
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from archbench.data import mqar
from archbench.data import retrieval as rt
from archbench.evaluation.common import EvalRun, arch_of, max_context
from archbench.evaluation.length import _mode, refuses
from archbench.evaluation.recall import check_tokenizer, state_bytes


@torch.inference_mode()
def exact_matches(model, ids: np.ndarray, answers: np.ndarray, batch_size: int, device, **forward_kw) -> np.ndarray:
    """Bool [n, A]: the greedy prediction before each answer position ``answers`` [n, A] of examples
    ``ids`` [n, T] is that answer."""
    out = []
    for i in range(0, len(ids), batch_size):
        x = torch.from_numpy(ids[i : i + batch_size]).to(device)
        pos = torch.from_numpy(answers[i : i + batch_size]).to(device)
        pred = model(x, **forward_kw).logits.argmax(-1)  # [B, T]: prediction of the token after each position
        out.append((pred.gather(1, pos - 1) == x.gather(1, pos)).cpu().numpy())
    return np.concatenate(out)


def score(right: np.ndarray) -> dict:
    """Exact-match counts of one task x length from :func:`exact_matches`' [n, A]."""
    correct, n = int(right.all(1).sum()), len(right)
    low, high = rt.wilson_interval(correct, n)
    return {
        "n_examples": n,
        "correct": correct,
        "accuracy": correct / n,
        "interval": [low, high],
        "answers": int(right.size),
        "answer_accuracy": float(right.mean()),
    }


def run_retrieval(
    model_dir: str,
    out_json: str | None,
    multipliers=(1, 2, 4, 8),
    tasks: tuple | list = rt.TASKS,
    examples: int = 100,
    seed: int = 0,
    batch_size: int = 16,
    vocab_size: int = 256,
    random_fillers: bool = True,
    device: str = "auto",
    dtype: str = "fp32",
    threads: int | None = None,
) -> dict:
    """Exact-match accuracy per task and length, with state bytes per length (schema above)."""
    with EvalRun("retrieval", locals()) as run:
        model, dev = run.model, run.device
        check_tokenizer(run.tokenizer, mqar.words(vocab_size), model_dir)
        seq_len = max_context(model)
        entries = []
        for k in sorted(set(multipliers)):
            context = k * seq_len
            why = refuses(model, context)
            if why:
                entries += [{"task": t, "multiplier": k, "context": context, "skipped": why} for t in tasks]
                continue
            mode, kw = _mode(model, context)
            state = None
            for task in tasks:
                ids, answers = rt.examples(task, context, examples, vocab_size, random_fillers, seed)
                if state is None:
                    state = state_bytes(model, ids[0], dev)
                entry = {
                    "task": task,
                    "multiplier": k,
                    "context": context,
                    "pairs": rt.pairs_in(task, context, vocab_size),
                    **score(exact_matches(model, ids, answers, batch_size, dev, **kw)),
                    "chance": rt.chance(task, context, vocab_size),
                    "mode": mode,
                    "state_bytes": state,
                }
                logging.getLogger(__name__).info(
                    "retrieval %s %sx (%s tokens): %.3f [%.3f, %.3f]",
                    task,
                    k,
                    context,
                    entry["accuracy"],
                    *entry["interval"],
                )
                entries.append(entry)
        return run.finish(
            {
                "arch": arch_of(model),
                "params": run.params,
                "seq_len": seq_len,
                "vocab_size": vocab_size,
                "random_fillers": random_fillers,
                "entries": entries,
            }
        )
