"""Long-context retrieval tasks on the MQAR vocabulary (rule ``retrieval``, :mod:`archbench.evaluation.retrieval`).

Three synthetic tasks, built from the token layout of :mod:`archbench.data.mqar` (specials 0-3, the
filler ``_`` = 4, then ``vocab_size / 2`` keys, then as many values) so that a model trained on
``data.source: mqar`` meets the format it learned (a key seen again is followed by the value that
followed it before). An example is exactly ``length`` tokens; the filler is the generator's
(``data.mqar.random_fillers``: random value words, else ``_``)::

    phonebook  k1 v1 k2 v2 ... kP vP [filler] kq vq          P = min(keys, (length - 2) // 2) pairs
    passkey    filler ... k v ... filler          k v          one pair at a random depth, queried at the end
    copy       k1 v1 ... kn vn  filler  k1 v1 ... kn vn      n = min(keys, (length - 1) // 4): the string,
                                                             a separator, the string again

Scored answers: phonebook and passkey the last token (the queried value); copy every value of the
repeat. Keys and values of an example are drawn without replacement, so a key names one value.
Copying (Jelassi et al. 2024, arXiv 2402.01032) repeats the whole string; here its keys are given
again (they are what an MQAR-trained model reads as queries) and its values must be reproduced, in
order: an example counts only when every value is right (exact match of the string), which needs the
whole string held, as copying does.

Every example is one scored unit (one exact-match answer), so the ``n`` examples of a point are
independent trials and :func:`wilson_interval` is their binomial interval. Each example is a pure
function of ``(seed, task, length, index)`` on a seed stream of its own (never the training documents'
or rule recall's). Torch-free: the report reads :func:`wilson_interval` and :data:`TASKS` too.
"""

from __future__ import annotations

import math

import numpy as np

from archbench.data.mqar import FIRST_WORD

TASKS = ("phonebook", "passkey", "copy")
STREAM = 1_000_037  # the retrieval examples' seed stream (mqar: documents [seed, i], recall 1_000_003 / 1_000_033)
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (95% by default); (0, 1) for n = 0.
    Unlike the normal interval it stays inside [0, 1] and is not empty at 0 or n successes."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # exactly 0 at no success and 1 at all (the closed form is, up to rounding)
    return (0.0 if correct == 0 else max(0.0, centre - half)), (1.0 if correct == n else min(1.0, centre + half))


def _words(rng: np.random.Generator, n: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct keys and ``n`` distinct values (token ids), as data.mqar draws a document's pairs."""
    half = vocab_size // 2
    keys = rng.choice(half, n, replace=False) + FIRST_WORD
    values = rng.choice(half, n, replace=False) + FIRST_WORD + half
    return keys, values


def _filler(rng: np.random.Generator, length: int, vocab_size: int, random_fillers: bool) -> np.ndarray:
    half = vocab_size // 2
    if random_fillers:
        return rng.integers(FIRST_WORD + half, FIRST_WORD + 2 * half, length).astype(np.int64)
    return np.full(length, FIRST_WORD - 1, dtype=np.int64)


def pairs_in(task: str, length: int, vocab_size: int) -> int:
    """Key-value pairs an example of ``task`` holds at ``length`` tokens (its content)."""
    half = vocab_size // 2
    if task == "phonebook":
        return min(half, (length - 2) // 2)
    if task == "passkey":
        return 1
    if task == "copy":
        return min(half, (length - 1) // 4)
    raise ValueError(f"unknown retrieval task {task!r} (known: {', '.join(TASKS)})")


def min_length(task: str) -> int:
    """The shortest example of ``task``: one pair and its query (copy: the pair, a separator, the pair)."""
    return {"phonebook": 4, "passkey": 4, "copy": 5}[task]


def example(rng: np.random.Generator, task: str, length: int, vocab_size: int, random_fillers: bool = False):
    """(ids [length] int64, answer positions [A] int64) of one example of ``task`` (module docstring)."""
    if length < min_length(task):
        raise ValueError(f"retrieval task {task!r} needs at least {min_length(task)} tokens, got {length}")
    n = pairs_in(task, length, vocab_size)
    keys, values = _words(rng, n, vocab_size)
    ids = _filler(rng, length, vocab_size, random_fillers)
    if task == "phonebook":
        ids[0 : 2 * n : 2], ids[1 : 2 * n : 2] = keys, values
        q = rng.integers(n)
        ids[length - 2], ids[length - 1] = keys[q], values[q]
        return ids, np.array([length - 1])
    if task == "passkey":
        depth = rng.integers(length - 3)  # the needle ends before the query: positions [0, length - 4]
        ids[depth], ids[depth + 1] = keys[0], values[0]
        ids[length - 2], ids[length - 1] = keys[0], values[0]
        return ids, np.array([length - 1])
    start = length - 2 * n  # copy: the string, filler (at least one separator token), the string again
    for at in (0, start):
        ids[at : at + 2 * n : 2], ids[at + 1 : at + 2 * n : 2] = keys, values
    return ids, start + 1 + 2 * np.arange(n)


def examples(task: str, length: int, n: int, vocab_size: int, random_fillers: bool = False, seed: int = 0):
    """(ids [n, length], answer positions [n, A]) of ``n`` examples; example ``i`` depends only on
    ``(seed, task, length, i)``, so the first examples stay the same when ``n`` grows."""
    t = TASKS.index(task)
    rows = [
        example(np.random.default_rng([seed, STREAM, t, length, i]), task, length, vocab_size, random_fillers)
        for i in range(n)
    ]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def chance(task: str, length: int, vocab_size: int) -> float:
    """Exact-match accuracy of a uniform guess among the value words: 1 / values per answer, all of an
    example's answers right (copy: ``(1 / values) ** n``)."""
    answers = pairs_in(task, length, vocab_size) if task == "copy" else 1
    return (1 / (vocab_size // 2)) ** answers
