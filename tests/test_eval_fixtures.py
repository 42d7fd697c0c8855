"""Tiny saved models and a tiny test split for the evaluation tests (helpers, no tests here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

WORDS = (
    "river stone light garden morning winter voice window harbor lantern forest shadow "
    "silver mountain letter candle meadow bridge thunder ocean"
).split()


def tiny_split(path: Path, n_docs: int = 12, seed: int = 0) -> Path:
    """A parquet 'test split' of synthetic documents with repeated words (so LAMBADA-style items exist)."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for _ in range(n_docs):
        idx = torch.randint(0, len(WORDS), (160,), generator=g).tolist()
        words = [WORDS[i] for i in idx]
        docs.append(" ".join(w + ("." if k % 9 == 8 else "") for k, w in enumerate(words)))
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": docs}).to_parquet(path / "part.0.parquet")
    return path


def tiny_model_dir(root: Path, arch: str, seed: int = 0, max_seq_len: int = 64, **extra) -> Path:
    """save_pretrained of a random 1-layer model plus a byte-level BPE tokenizer trained on tiny_split."""
    from transformers import AutoTokenizer

    from archbench.data.tokenizer import train_tokenizer
    from archbench.models import build_model

    tok_dir = root / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        train_tokenizer(str(tiny_split(root / "split")), str(tok_dir), vocab_size=300, min_frequency=1)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    model = build_model(
        arch,
        vocab_size=len(tokenizer),
        embed_dim=32,
        ffn_dim=64,
        heads=2,
        layers=1,
        max_seq_len=max_seq_len,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )
    out = root / f"{arch}-model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def mqar_model_dir(root: Path, arch: str, vocab_size: int, max_seq_len: int, **extra) -> Path:
    """save_pretrained of a random 2-layer model with the MQAR word-level tokenizer of ``vocab_size`` words."""
    from transformers import AutoTokenizer

    from archbench.data import mqar
    from archbench.models import build_model

    mqar.write_tokenizer(str(root / "tok"), {"vocab_size": vocab_size})
    tok = AutoTokenizer.from_pretrained(root / "tok")
    torch.manual_seed(0)
    model = build_model(
        arch, vocab_size=len(tok), embed_dim=32, ffn_dim=64, heads=2, layers=2, max_seq_len=max_seq_len, **extra
    )
    out = root / f"{arch}-model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
