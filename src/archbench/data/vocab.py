"""What every tokenizer of the pipeline shares: the special tokens and their fixed ids, the atomic save
and the hash that identifies a vocabulary. Imports no other data module (the sources' tokenizers and
the BPE trainer both use it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]  # order == ids 0..3
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


def tokenizer_hash(out_dir: str) -> str:
    """sha256 of ``tokenizer.json``: identifies the vocabulary that token files were made with."""
    h = hashlib.sha256()
    with open(Path(out_dir) / "tokenizer.json", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_tokenizer(hf_tokenizer, out_dir) -> None:
    """``save_pretrained`` into a temporary folder, then move each file into ``out_dir``.

    Files are moved one by one (not the folder) because ``out_dir`` may already exist and hold
    other files; ``tokenizer.json`` goes last, so its presence means the save completed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".save-", suffix=".tmp", dir=out_dir))
    try:
        hf_tokenizer.save_pretrained(str(tmp))
        for f in sorted(tmp.iterdir(), key=lambda p: p.name == "tokenizer.json"):
            os.replace(f, out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
