"""Multi-query associative recall (MQAR, Zoology: arXiv 2312.04927) as a data source: ``data.source: mqar``.

A document is ``seq_len - 1`` words (plus the ``</s>`` the tokenize stage appends, so documents
fill training windows of ``seq_len`` exactly)::

    keyam valah keyad valbe ... _ _ keyad valbe _ _ _ keyam valah ... _
    |---- P key-value pairs ---|---- Q queries at random 2-slots, "_" elsewhere ---|

Keys and values are drawn without replacement from two disjoint word sets (``vocab_size / 2``
each); each query repeats one of the document's keys and is followed by its value, the *answer*.
The tokenizer is word-level with a fixed vocabulary (:func:`write_tokenizer`): one word = one
token and the ids are fixed (specials 0-3, ``_`` = 4, keys, then values), so the answer positions
of a document are known exactly without any alignment. Training documents cycle through
``data.mqar.pairs`` (a mixture, as in Zoology); evaluation (:mod:`archbench.evaluation.recall`)
draws fresh examples from a separate seed stream and scores only the answer positions.

Everything is a pure function of ``(seed, document index)``: the corpus is deterministic and
any document can be regenerated alone.
"""

from __future__ import annotations

import math
import time

import numpy as np

from archbench.errors import ConfigError

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]  # ids 0..3, as the BPE tokenizer's (data/tokenizer.py)
FILLER = "_"
FIRST_WORD = len(SPECIALS) + 1  # first key id
EVAL_STREAM = 1_000_003  # the test examples' seed stream, disjoint from the documents'
VALIDATION_STREAM = 1_000_033  # the validation examples' (choices on recall read these, never the test's)


def _letters(i: int, width: int) -> str:
    out = ""
    for _ in range(width):
        i, r = divmod(i, 26)
        out = chr(ord("a") + r) + out
    return out


def words(vocab_size: int) -> list[str]:
    """Every word of the vocabulary in id order (ids 0..3 are the special tokens): ``_``, then keys
    ``keyaa, keyab, ...`` and values ``valaa, ...``. Plain letters, so the offline harness tasks treat
    them as words (the last-word task then asks for an answer that occurred in the context)."""
    half = vocab_size // 2
    width = max(1, math.ceil(math.log(half, 26))) if half > 1 else 1
    return (
        SPECIALS
        + [FILLER]
        + [f"key{_letters(i, width)}" for i in range(half)]
        + [f"val{_letters(i, width)}" for i in range(half)]
    )


def gap_probabilities(space: int, power_a: float) -> np.ndarray | None:
    """Zoology's query-gap law over the ``space`` query slots: p(g) ~ a * (g + 1)^(a - 1), slot 0 right
    after the key-value section (a = 0.01: most queries come soon after it, a long tail further
    away); None for a = 1 (uniform)."""
    if power_a == 1:
        return None
    p = power_a * np.arange(1, space + 1, dtype=np.float64) ** (power_a - 1)
    return p / p.sum()


def example(
    rng: np.random.Generator,
    pairs: int,
    queries: int,
    length: int,
    vocab_size: int,
    power_a: float = 1.0,
    random_fillers: bool = False,
):
    """(ids [length] int64, answer positions [queries] int64) of one document.

    ``power_a``: query gaps from :func:`gap_probabilities` (1 = uniform slots). ``random_fillers``:
    the positions that are neither a pair nor a query hold random *value* words instead of ``_``
    (Zoology draws them from the whole vocabulary; a key there would read as a query to the answer mask
    of the training loss, so keys are left out). The default arguments give the original generator,
    draw for draw."""
    half = vocab_size // 2
    keys = rng.choice(half, pairs, replace=False) + FIRST_WORD
    values = rng.choice(half, pairs, replace=False) + FIRST_WORD + half
    ids = np.full(length, FIRST_WORD - 1, dtype=np.int64)  # filler
    ids[0 : 2 * pairs : 2], ids[1 : 2 * pairs : 2] = keys, values
    asked = rng.permutation(pairs)[:queries]
    space = (length - 2 * pairs) // 2
    p = gap_probabilities(space, power_a)
    slots = np.sort(rng.choice(space, queries, replace=False) if p is None else rng.choice(space, queries, False, p))
    starts = 2 * pairs + 2 * slots
    ids[starts], ids[starts + 1] = keys[asked], values[asked]
    if random_fillers:
        free = np.flatnonzero(ids == FIRST_WORD - 1)
        ids[free] = rng.integers(FIRST_WORD + half, FIRST_WORD + 2 * half, len(free))
    return ids, starts + 1


def hide_answers(ids: np.ndarray, answers: np.ndarray, cfg: dict, rng: np.random.Generator) -> np.ndarray:
    """The model's input when answers are only targets (``answers_in_input: false``, as in Zoology): a
    copy of ``ids`` [..., T] whose answer positions ``answers`` [..., Q] hold a filler (a random value
    word with ``random_fillers``, else ``_``); the scored answers are read from ``ids``."""
    out = ids.copy()
    half = cfg["vocab_size"] // 2
    if cfg.get("random_fillers"):
        fill = rng.integers(FIRST_WORD + half, FIRST_WORD + 2 * half, answers.shape)
    else:
        fill = np.full(answers.shape, FIRST_WORD - 1)
    np.put_along_axis(out, answers, fill, axis=-1)
    return out


def generator_settings(cfg: dict) -> dict:
    """The generator options of ``data.mqar`` that change the examples; a key absent from ``cfg`` means
    the option is off (the original generator: uniform gaps, ``_`` fillers, answers in the input)."""
    return {
        "power_a": float(cfg.get("power_a", 1.0)),
        "random_fillers": bool(cfg.get("random_fillers", False)),
        "answers_in_input": bool(cfg.get("answers_in_input", True)),
        "vocab_size": cfg["vocab_size"],
        "seq_len": cfg["seq_len"],
        "pairs": list(cfg["pairs"]),
        "queries": cfg.get("queries"),
    }


def _generate(rng, cfg: dict, pairs: int):
    g = generator_settings(cfg)
    return example(
        rng, pairs, n_queries(cfg, pairs), cfg["seq_len"] - 1, cfg["vocab_size"], g["power_a"], g["random_fillers"]
    )


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def n_queries(cfg: dict, pairs: int) -> int:
    return pairs if cfg.get("queries") is None else min(cfg["queries"], pairs)


def document(cfg: dict, seed: int, index: int):
    """Training document ``index``: pair counts cycle through ``cfg["pairs"]``."""
    pairs = cfg["pairs"][index % len(cfg["pairs"])]
    return _generate(_rng(seed, index), cfg, pairs)


def eval_examples(cfg: dict, seed: int, pairs: int, n: int, stream: int = EVAL_STREAM):
    """(ids [n, seq_len - 1], answer positions [n, Q]) held-out examples with ``pairs`` pairs, from the
    test stream (``EVAL_STREAM``) or the validation one (``VALIDATION_STREAM``): the two never share a seed."""
    rows = [_generate(_rng(seed, stream, pairs, i), cfg, pairs) for i in range(n)]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def key_ids(vocab_size: int) -> list[int]:
    """``[first, end)`` token ids of the key words (the training module's ``answer_keys``)."""
    return [FIRST_WORD, FIRST_WORD + vocab_size // 2]


def answer_targets(x, keys):
    """Bool ``[B, T]``: the token after ``x[:, t]`` is a query's answer, i.e. ``x[:, t]`` is a key that
    already occurred in ``x[:, :t]`` (its first occurrence is in the key-value section, whose value
    cannot be predicted). Zoology trains on exactly these positions; with the loss over every position
    the fillers and the unpredictable key-value section dominate and small models stay at chance."""
    import torch

    is_key = (x >= keys[0]) & (x < keys[1])
    earlier = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).tril(-1)
    seen = ((x[:, :, None] == x[:, None, :]) & earlier).any(-1)
    return is_key & seen


def to_text(ids, vocab: list[str]) -> str:
    return " ".join(vocab[i] for i in ids)


def check_config(cfg: dict) -> None:
    """Cross-key rules of ``data.mqar`` (``cfg``), each naming its key. The rule that spans sections
    (training seq_len == data.mqar.seq_len) is the mqar source's (archbench.data.sources.mqar)."""
    if not generator_settings(cfg)["answers_in_input"]:
        raise ConfigError(
            "config key 'data.mqar.answers_in_input': false (answers only in the targets, as in Zoology) "
            "needs the input and the targets of a training window to differ; the pipeline trains on "
            "one token stream, so it is not supported yet (rule recall can hide them: "
            "archbench.data.mqar.hide_answers)"
        )
    half, length = cfg["vocab_size"] // 2, cfg["seq_len"] - 1
    for p in sorted(set(cfg["pairs"]) | set(cfg.get("eval_pairs") or [])):
        key = "pairs" if p in cfg["pairs"] else "eval_pairs"
        if p > half:
            raise ConfigError(
                f"config key 'data.mqar.{key}': {p} pairs need {p} distinct keys, but "
                f"data.mqar.vocab_size {cfg['vocab_size']} gives {half}"
            )
        need = 2 * p + 2 * n_queries(cfg, p)
        if need > length:
            raise ConfigError(
                f"config key 'data.mqar.{key}': {p} pairs + {n_queries(cfg, p)} queries need {need} "
                f"tokens, but data.mqar.seq_len {cfg['seq_len']} leaves {length} (one is </s>)"
            )


def download(data_cfg: dict, out_parquet: str, out_stats: str | None = None) -> dict:
    """The download stage for ``data.source: mqar``: ``data.mqar.documents`` documents as parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archbench.io import atomic_file, write_json

    cfg = data_cfg["mqar"]
    seed = cfg["seed"]
    t0 = time.perf_counter()
    vocab = words(cfg["vocab_size"])
    docs = [to_text(document(cfg, seed, i)[0], vocab) for i in range(cfg["documents"])]
    with atomic_file(out_parquet) as tmp:
        pq.write_table(pa.Table.from_pydict({"text": pa.array(docs, type=pa.string())}), tmp, row_group_size=10_000)
    stats = {
        "source": "mqar",
        "n_documents": len(docs),
        "n_dropped_empty": 0,
        "n_replaced_utf8": 0,
        "n_chars": sum(map(len, docs)),
        "seconds": round(time.perf_counter() - t0, 3),
        "mqar": cfg,
    }
    if out_stats:
        write_json(stats, out_stats)
    return stats


def write_tokenizer(out_dir: str, cfg: dict) -> dict:
    """The train_tokenizer stage for MQAR: a word-level tokenizer over :func:`words` (no training)."""
    from pathlib import Path

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from archbench.data.vocab import save_tokenizer, tokenizer_hash

    vocab = words(cfg["vocab_size"])
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(SPECIALS)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    save_tokenizer(hf, Path(out_dir))
    return {"vocab_size": len(vocab), "word_level": True, "tokenizer_sha256": tokenizer_hash(out_dir)}
