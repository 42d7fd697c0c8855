"""Offline lm-eval tasks made from the held-out test split (no hub download, no network).

Three tasks, each a ``<name>.jsonl`` of documents plus a ``<name>.yaml`` task config whose
``dataset_kwargs.data_files`` is an ABSOLUTE path (lm-eval resolves relative paths against the
current directory, not the YAML). All carry the tag ``archbench``, so ``tasks: [archbench]`` runs
all three.

- ``archbench_ppl`` (loglikelihood_rolling): whole test documents; word_perplexity,
  byte_perplexity, bits_per_byte (tokenizer-independent, so the architectures compare fairly).
- ``archbench_cloze`` (multiple_choice): a passage and four continuations of equal word count,
  the true one and three taken from other documents; acc and acc_norm.
- ``archbench_lastword`` (loglikelihood, LAMBADA-style): predict the last word of a passage; the
  target word already occurs earlier in the passage, so the broad context is what predicts it;
  acc (greedy match) and perplexity.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from pathlib import Path

import yaml

from archbench.data.readers import count_rows, split_texts
from archbench.errors import DataError
from archbench.io import atomic_file

TASKS = ("archbench_ppl", "archbench_cloze", "archbench_lastword")
SAMPLE_DOCS = 2048  # test documents the tasks are made from, at most (a seeded sample beyond): bounded memory
MIN_DOCS = 2  # the cloze task's distractors come from other documents
_SAMPLE_STREAM = 0x5A3D  # the sample's random stream, apart from the items' (which the seed also drives)
TAG = "archbench"
_WORD = re.compile(r"^([A-Za-z]{4,})[.,;:!?'\")]*$")  # a plain word, trailing punctuation allowed
_STRIP = ".,;:!?'\"()"

_MEAN = {"aggregation": "mean", "higher_is_better": True}
SPECS = {
    "archbench_ppl": {
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "metric_list": [{"metric": m} for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")],
    },
    "archbench_cloze": {
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "metric_list": [{"metric": "acc", **_MEAN}, {"metric": "acc_norm", **_MEAN}],
    },
    "archbench_lastword": {
        # as lm-eval's lambada_openai: the target carries its leading space
        "output_type": "loglikelihood",
        "doc_to_text": "{{context}}",
        "doc_to_target": "{{' ' + target}}",
        "metric_list": [
            {"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
            {"metric": "acc", **_MEAN},
        ],
    },
}


def cloze_items(
    docs: list[list[str]], rng: random.Random, context_words: int, choice_words: int, per_doc: int, n_choices: int = 4
) -> list[dict]:
    """Passages with their true continuation among ``n_choices - 1`` continuations from other documents."""
    span = context_words + choice_words
    items = []
    for i, words in enumerate(docs):
        others = [d for j, d in enumerate(docs) if j != i and len(d) >= choice_words]
        if not others:
            continue
        for start in range(0, len(words) - span + 1, span)[:per_doc]:
            true = " ".join(words[start + context_words : start + span])
            choices = [true]
            for _ in range(20 * n_choices):  # distinct distractors (bounded tries: tiny corpora)
                if len(choices) == n_choices:
                    break
                other = rng.choice(others)
                at = rng.randrange(len(other) - choice_words + 1)
                text = " ".join(other[at : at + choice_words])
                if text not in choices:
                    choices.append(text)
            if len(choices) < 2:
                continue
            rng.shuffle(choices)
            items.append(
                {
                    "context": " ".join(words[start : start + context_words]),
                    "choices": choices,
                    "label": choices.index(true),
                }
            )
    return items


def lastword_items(docs: list[list[str]], context_words: int, per_doc: int, n_common: int = 100) -> list[dict]:
    """(context, target) where the target word also appears in the context (LAMBADA's criterion)
    and is not among the corpus' ``n_common`` most frequent words (no "that" / "the" targets)."""
    freq = Counter(w.strip(_STRIP).lower() for words in docs for w in words)
    common = {w for w, _ in freq.most_common(min(n_common, len(freq) // 5))}  # tiny corpora keep some
    items = []
    for words in docs:
        found, i = 0, context_words
        while i < len(words) and found < per_doc:
            m = _WORD.match(words[i])
            context = words[i - context_words : i]
            target = m.group(1).lower() if m else None
            if target and target not in common and target in {w.strip(_STRIP).lower() for w in context}:
                items.append({"context": " ".join(context), "target": m.group(1)})
                found += 1
                i += context_words  # the next passage does not overlap this one
            i += 1
    return items


def sample_documents(test_dir: str, n: int, seed: int) -> list[str]:
    """At most ``n`` non-empty test documents, streamed: all of them in corpus order when the split holds
    at most ``n`` rows, else a seeded sample of rows (kept in corpus order). Memory: the sample, never
    the split (C4's 1% test split is ~3.6M documents)."""
    total = count_rows(test_dir)
    keep = None
    if total > n:
        keep = set(random.Random(seed * 1_000_003 + _SAMPLE_STREAM).sample(range(total), n))
    out, row = [], 0
    for batch in split_texts(test_dir, keep_empty=True):
        for text in batch:
            if (keep is None or row in keep) and text.strip():
                out.append(text)
            row += 1
    return out


def passages(texts: list[str], n: int, min_words: int) -> list[str]:
    """``texts`` cut into at least ``n`` passages of at least ``min_words`` words where they are long
    enough (each document into equal parts, in order); unchanged otherwise."""
    words = [t.split() for t in texts]
    total = sum(map(len, words))
    if total < n * min_words:
        return texts
    out = []
    for w in words:
        parts = max(1, round(n * len(w) / total)) if len(w) >= 2 * min_words else 1
        size = -(-len(w) // parts)
        out += [" ".join(w[i : i + size]) for i in range(0, len(w), size)]
    return out


def _write_jsonl(rows: list[dict], path: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def task_config(name: str, data_file: str, n_docs: int) -> dict:
    return {
        "task": name,
        "tag": [TAG],
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": os.path.abspath(data_file)}},
        "test_split": "test",
        **SPECS[name],
        "metadata": {"version": 1.0, "n_docs": n_docs},
    }


def task_yamls(include_path: str | None) -> list[str]:
    """Every task YAML under ``include_path`` (none when it is unset)."""
    if not include_path:
        return []
    return sorted(str(p) for p in Path(include_path).rglob("*") if p.suffix in (".yaml", ".yml"))


def build_tasks(
    test_dir: str,
    out_dir: str,
    seed: int = 0,
    max_docs: int | None = None,
    context_words: int = 64,
    choice_words: int = 8,
    per_doc: int = 4,
) -> dict[str, int]:
    """Write the three tasks' .jsonl and .yaml files into ``out_dir`` from the parquet test split in
    ``test_dir``. Returns {task: number of documents}. The tasks are made from :func:`sample_documents`
    (at most ``max_docs``, default :data:`SAMPLE_DOCS`, test documents: a seeded sample beyond that), or
    from passages of the documents when the split holds fewer than :data:`MIN_DOCS` long ones.

    Continuations are short (``choice_words``) because lm-eval needs every continuation to fit the
    model's context (contexts are truncated from the left); tiny models train on 32 tokens."""
    texts = sample_documents(test_dir, SAMPLE_DOCS if max_docs is None else max_docs, seed)
    if len(texts) < MIN_DOCS:  # a tiny test split of long documents: its passages serve as documents
        texts = passages(texts, MIN_DOCS, context_words + choice_words)
    if len(texts) < MIN_DOCS:
        raise DataError(
            f"{test_dir}: the test split has {len(texts)} non-empty documents; the offline "
            f"eval tasks need at least {MIN_DOCS} (use a larger corpus or test fraction)"
        )
    words = [t.split() for t in texts]
    # Corpora of short documents (MQAR's 63 words) get shorter contexts rather than no items.
    context_words = max(1, min(context_words, max(map(len, words)) - choice_words))
    rng = random.Random(seed)
    rows = {
        "archbench_ppl": [{"text": t} for t in texts],
        "archbench_cloze": cloze_items(words, rng, context_words, choice_words, per_doc),
        "archbench_lastword": lastword_items(words, context_words, per_doc),
    }
    for name in ("archbench_cloze", "archbench_lastword"):  # eval.limit takes the first items:
        rng.shuffle(rows[name])  # spread them over the documents
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for name in TASKS:
        if not rows[name]:
            raise DataError(
                f"{test_dir}: no {name} items could be made (documents shorter than "
                f"{context_words + choice_words} words?)"
            )
        data_file = os.path.join(out_dir, f"{name}.jsonl")
        _write_jsonl(rows[name], data_file)
        with atomic_file(os.path.join(out_dir, f"{name}.yaml")) as tmp:
            tmp.write_text(yaml.safe_dump(task_config(name, data_file, len(rows[name])), sort_keys=False))
        counts[name] = len(rows[name])
    return counts
