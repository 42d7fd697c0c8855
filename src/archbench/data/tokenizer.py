"""The ``train_tokenizer`` stage: byte-level BPE trained on the train split only, or on a bounded sample
of it (``tokenizer.sample_bytes``) drawn evenly from every train shard: the trainer keeps its pair
counts in memory, and a few hundred MB of text already give a stable vocabulary.

Byte-level BPE never needs ``<unk>`` (every byte is in the base alphabet), but the id is
reserved so all special ids are fixed: ``<pad>``=0, ``<s>``=1, ``</s>``=2, ``<unk>``=3. Text never
produces them: ``</s>`` written in a document is split as ordinary text (``split_special_tokens``; the
tokenize stage sets the same on the raw tokenizer); only the pipeline inserts separators.
The result is saved as a Hugging Face fast tokenizer so ``AutoTokenizer.from_pretrained``
(lm-eval, generation) and the raw ``tokenizers.Tokenizer`` (``tokenize`` stage) read the same file.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from archbench.data.readers import count_rows, open_parquet, parquet_files, require_column
from archbench.data.sources import source_of
from archbench.data.vocab import (  # noqa: F401  (the shared vocabulary facts, importable from here too)
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    save_tokenizer,
    tokenizer_hash,
)
from archbench.errors import ConfigError, DataError
from archbench.logs import progress

MIN_VOCAB = len(SPECIAL_TOKENS) + 256  # specials + the 256-byte base alphabet


def _text_bytes(path: str) -> int:
    """Bytes of text in a parquet shard, from its footer (uncompressed size of the text column)."""
    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(g).column(0).total_uncompressed_size for g in range(meta.num_row_groups))


def sample_texts(files: list[str], sample_bytes: int | None, batch_size: int = 1000) -> Iterator[list[str]]:
    """Batches of documents from the train shards ``files``: all of them when they hold at most
    ``sample_bytes`` of text, else from each shard its first documents up to its share of
    ``sample_bytes`` (proportional to its size), so every shard contributes and only the sample is read."""
    files = sorted(map(str, files))
    sizes = {f: _text_bytes(f) for f in files}
    total = sum(sizes.values())
    fraction = 1.0 if not sample_bytes or total <= sample_bytes else sample_bytes / total
    for f in files:
        budget, taken = fraction * sizes[f], 0
        for batch in open_parquet(f).iter_batches(columns=["text"], batch_size=batch_size):
            texts = [t for t in batch.column(0).to_pylist() if t]
            if fraction < 1.0:
                out = []
                for t in texts:
                    if taken >= budget:
                        break
                    out.append(t)
                    taken += len(t.encode("utf-8", "surrogatepass"))
                texts = out
            if texts:
                yield texts
            if fraction < 1.0 and taken >= budget:
                break


def train_tokenizer(
    train_dir,
    out_dir: str,
    vocab_size: int,
    min_frequency: int = 2,
    sample_bytes: int | None = None,
    data: dict | None = None,
) -> dict:
    """Train byte-level BPE on the train split (``train_dir``: a parquet file, a directory of shards or a
    list of shard files), or on a ``sample_bytes`` sample of it (see :func:`sample_texts`), and save it
    to ``out_dir``.

    Returns stats: requested/achieved vocab size, documents/characters seen, tokenizer sha256.
    Warns when the corpus is too small to reach ``vocab_size`` merges.
    """
    own = source_of(data).tokenizer(data, out_dir) if data else None  # a source with a fixed vocabulary
    if own is not None:
        return own
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not MIN_VOCAB <= vocab_size < 2**32:
        raise ConfigError(
            f"tokenizer vocab_size must be an integer >= {MIN_VOCAB} (4 special tokens + 256 bytes), got {vocab_size!r}"
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ConfigError(f"tokenizer min_frequency must be an integer >= 1, got {min_frequency!r}")
    from transformers import PreTrainedTokenizerFast  # heavy import, only needed to save

    if sample_bytes is not None and (
        isinstance(sample_bytes, bool) or not isinstance(sample_bytes, int) or sample_bytes < 1
    ):
        raise ConfigError(f"tokenizer.sample_bytes must be a positive integer, got {sample_bytes!r}")
    files = parquet_files(train_dir)
    for f in files:  # before any work: a shard without text fails here, naming the file
        require_column(f)
    n_docs = count_rows(files)
    if n_docs == 0:
        raise DataError(f"{train_dir}: the train split is empty; cannot train a tokenizer")
    seen = {"n_documents": 0, "n_chars": 0}

    def batches():
        for texts in progress(sample_texts(files, sample_bytes), "BPE: reading documents", n_docs, "doc", weight=len):
            seen["n_documents"] += len(texts)
            seen["n_chars"] += sum(map(len, texts))
            yield texts

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)  # correct offsets, no added tokens
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),  # its bar on a terminal; the reading progress is logged above
    )
    tok.train_from_iterator(batches(), trainer=trainer, length=n_docs)
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3], "special token ids moved"

    achieved = tok.get_vocab_size()
    if achieved < vocab_size:
        warnings.warn(
            f"tokenizer vocabulary has {achieved} tokens, fewer than the requested {vocab_size}: "
            f"the train split ({seen['n_documents']} documents, {seen['n_chars']} characters) has no more "
            f"pairs occurring >= {min_frequency} times; use a larger corpus or a smaller vocab_size",
            stacklevel=2,
        )
    # split_special_tokens (kept in tokenizer_config.json): "</s>" written in a text (a document, an eval
    # task, a prompt) is encoded as the characters it is; only code inserts the special ids
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        split_special_tokens=True,
    )
    save_tokenizer(hf, Path(out_dir))
    return {
        "vocab_size_requested": vocab_size,
        "vocab_size": achieved,
        "min_frequency": min_frequency,
        "special_tokens": {t: i for i, t in enumerate(SPECIAL_TOKENS)},
        "train_dir": str(train_dir) if not isinstance(train_dir, (list, tuple)) else f"{len(files)} shards",
        "sample_bytes": sample_bytes,
        **seen,
        "tokenizer_sha256": tokenizer_hash(out_dir),
    }
