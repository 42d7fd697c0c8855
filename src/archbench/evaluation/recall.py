"""Associative-recall accuracy of a run trained on ``data.source: mqar`` -> ``recall.json`` (rule ``recall``).

For every pair count in ``data.mqar.pairs`` (plus ``data.mqar.eval_pairs``), ``data.mqar.eval_examples``
fresh examples (:func:`archbench.data.mqar.eval_examples`, a seed stream disjoint from the training
documents) are read in one forward each; a query is recalled when the greedy prediction at the
position before its answer is exactly the answer token. Only answer positions are scored; the
keys, fillers and the key-value section itself are unpredictable by construction.

Schema::

    {"arch", "params", "seq_len", "vocab_size", "entries": [{"pairs", "queries", "n_examples",
     "n_answers", "accuracy", "chance"}, ...]}       # chance = 1 / number of value words
"""

from __future__ import annotations

import numpy as np
import torch

from archbench.data import mqar
from archbench.evaluation.common import EvalError, arch_of, load_model, torch_threads
from archbench.io import write_json


@torch.inference_mode()
def recall_accuracy(model, ids: np.ndarray, answers: np.ndarray, batch_size: int, device) -> tuple[int, int]:
    """(correct, total) over the answer positions ``answers`` [n, Q] of examples ``ids`` [n, T]."""
    correct = 0
    for i in range(0, len(ids), batch_size):
        x = torch.from_numpy(ids[i : i + batch_size]).to(device)
        pos = torch.from_numpy(answers[i : i + batch_size]).to(device)
        pred = model(x).logits.argmax(-1)  # [B, T]: prediction of the token after each position
        correct += int((pred.gather(1, pos - 1) == x.gather(1, pos)).sum())
    return correct, int(answers.size)


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
    model, tokenizer, dev = load_model(model_dir, device, dtype)
    vocab = mqar.words(mqar_cfg["vocab_size"])
    check_tokenizer(tokenizer, vocab, model_dir)
    seed = mqar_cfg["seed"]
    entries = []
    with torch_threads(threads):
        for pairs in sorted(set(mqar_cfg["pairs"]) | set(mqar_cfg.get("eval_pairs") or [])):
            ids, answers = mqar.eval_examples(mqar_cfg, seed, pairs, mqar_cfg["eval_examples"])
            correct, total = recall_accuracy(model, ids, answers, batch_size, dev)
            entries.append(
                {
                    "pairs": pairs,
                    "queries": int(answers.shape[1]),
                    "n_examples": int(len(ids)),
                    "n_answers": total,
                    "accuracy": correct / total,
                    "chance": 1 / (mqar_cfg["vocab_size"] // 2),
                }
            )
    result = {
        "arch": arch_of(model),
        "params": sum(p.numel() for p in model.parameters()),
        "seq_len": mqar_cfg["seq_len"],
        "vocab_size": mqar_cfg["vocab_size"],
        "entries": entries,
    }
    if out_json:
        write_json(result, out_json)
    return result
