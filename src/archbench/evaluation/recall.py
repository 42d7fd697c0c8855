"""Associative-recall accuracy of a run trained on ``data.source: mqar`` -> ``recall.json`` (rule ``recall``).

For every pair count in ``data.mqar.pairs`` (plus ``data.mqar.eval_pairs``), ``data.mqar.eval_examples``
fresh examples (:func:`archbench.data.mqar.eval_examples`, a seed stream disjoint from the training
documents) are read in one forward each; a query is recalled when the greedy prediction at the
position before its answer is exactly the answer token. Only answer positions are scored; the
keys, fillers and the key-value section itself are unpredictable by construction.

Two example streams: the test stream gives ``entries`` (what the report shows) and a separate
validation stream gives ``validation`` (what any choice among runs, e.g. of a learning rate, reads;
a choice never reads the test stream). ``state_bytes`` is what the model carries per sequence after
reading one MQAR example (recurrent state, or KV cache), measured from its cache: recall tracks it
(Zoology), so a comparison at matched parameters shows it beside the accuracy.

Schema::

    {"arch", "params", "seq_len", "vocab_size",
     "state_bytes",                                   # decoding state per sequence at seq_len - 1 tokens
     "generator": {power_a, random_fillers, answers_in_input, vocab_size, seq_len, pairs, queries},
     "entries": [{"pairs", "queries", "n_examples", "n_answers", "accuracy", "chance"}, ...],  # test
     "validation": {"<pairs>": accuracy, ...},        # same sizes, validation stream
     "provenance": {...}}                             # chance = 1 / number of value words
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from archbench.data import mqar
from archbench.evaluation.common import EvalError, EvalRun, arch_of


@torch.inference_mode()
def recall_accuracy(
    model, ids: np.ndarray, answers: np.ndarray, batch_size: int, device, inputs: np.ndarray | None = None
) -> tuple[int, int]:
    """(correct, total) over the answer positions ``answers`` [n, Q] of examples ``ids`` [n, T]; the
    model reads ``inputs`` (default ``ids``; answers hidden: :func:`archbench.data.mqar.hide_answers`)."""
    inputs = ids if inputs is None else inputs
    correct = 0
    for i in range(0, len(ids), batch_size):
        x = torch.from_numpy(inputs[i : i + batch_size]).to(device)
        y = torch.from_numpy(ids[i : i + batch_size]).to(device)
        pos = torch.from_numpy(answers[i : i + batch_size]).to(device)
        pred = model(x).logits.argmax(-1)  # [B, T]: prediction of the token after each position
        correct += int((pred.gather(1, pos - 1) == y.gather(1, pos)).sum())
    return correct, int(answers.size)


@torch.inference_mode()
def state_bytes(model, ids: np.ndarray, device) -> int:
    """Decoding state per sequence after reading one example ``ids`` [T]: the bytes of the cache the
    model returns (:func:`archbench.evaluation.latency.cache_nbytes`; as latency.json measures it)."""
    from archbench.models.cache import cache_nbytes

    out = model(torch.from_numpy(ids[None]).to(device), use_cache=True, logits_to_keep=1)
    return int(cache_nbytes(out.cache))


def accuracy(model, cfg: dict, pairs: int, batch_size: int, device, stream: int) -> tuple[int, int, np.ndarray]:
    """(correct, total, answer positions) on ``eval_examples`` fresh examples of ``stream``."""
    ids, answers = mqar.eval_examples(cfg, cfg["seed"], pairs, cfg["eval_examples"], stream)
    inputs = None
    if not mqar.generator_settings(cfg)["answers_in_input"]:
        inputs = mqar.hide_answers(ids, answers, cfg, np.random.default_rng([cfg["seed"], stream, pairs]))
    correct, total = recall_accuracy(model, ids, answers, batch_size, device, inputs)
    return correct, total, answers


def check_tokenizer(tokenizer, vocab: list[str], model_dir: str) -> None:
    if tokenizer.convert_tokens_to_ids(vocab) != list(range(len(vocab))):
        raise EvalError(
            f"{model_dir}: its tokenizer is not the MQAR word-level vocabulary of data.mqar "
            f"(vocab_size {len(vocab) - 5}); was the run trained with data.source: mqar?"
        )


def run_recall(
    model_dir: str,
    out_json: str | None,
    mqar_cfg: dict,
    batch_size: int = 64,
    device: str = "auto",
    dtype: str = "fp32",
    threads: int | None = None,
) -> dict:
    with EvalRun("recall", locals()) as run:
        model, dev = run.model, run.device
        vocab = mqar.words(mqar_cfg["vocab_size"])
        check_tokenizer(run.tokenizer, vocab, model_dir)
        entries, validation = [], {}
        for pairs in sorted(set(mqar_cfg["pairs"]) | set(mqar_cfg.get("eval_pairs") or [])):
            correct, total, answers = accuracy(model, mqar_cfg, pairs, batch_size, dev, mqar.EVAL_STREAM)
            right, seen, _ = accuracy(model, mqar_cfg, pairs, batch_size, dev, mqar.VALIDATION_STREAM)
            validation[str(pairs)] = right / seen
            print(f"recall pairs={pairs}: test {correct / total:.3f}, validation {right / seen:.3f}", file=sys.stderr)
            entries.append(
                {
                    "pairs": pairs,
                    "queries": int(answers.shape[1]),
                    "n_examples": int(len(answers)),
                    "n_answers": total,
                    "accuracy": correct / total,
                    "chance": 1 / (mqar_cfg["vocab_size"] // 2),
                }
            )
        state = state_bytes(model, mqar.document(mqar_cfg, mqar_cfg["seed"], 0)[0], dev)
        return run.finish(
            {
                "arch": arch_of(model),
                "params": run.params,
                "seq_len": mqar_cfg["seq_len"],
                "vocab_size": mqar_cfg["vocab_size"],
                "state_bytes": state,
                "generator": mqar.generator_settings(mqar_cfg),
                "entries": entries,
                "validation": validation,
            }
        )
