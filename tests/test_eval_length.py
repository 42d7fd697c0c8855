"""Length extrapolation: the bucketed losses equal a direct per-position computation; RetNet reads 8x
its training length chunkwise; learned positions beyond max_seq_len are skipped by rule, not by error."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archbench.evaluation.length import geometric_buckets, run_length, windows
from test_eval_fixtures import tiny_model_dir

SEQ = 16


def _tokens(tmp_path, n=2000, vocab=300, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(4, vocab, n).astype("<u2")
    bin_path = tmp_path / "test.bin"
    arr.tofile(bin_path)
    (tmp_path / "test.json").write_text(json.dumps({"dtype": "uint16", "n_tokens": n}))
    return bin_path, arr


def test_geometric_buckets_cover_every_position_once():
    assert geometric_buckets(16) == [(0, 1), (1, 2), (2, 4), (4, 8), (8, 16)]
    assert geometric_buckets(24) == [(0, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 24)]


def test_windows_never_cross_a_shard_and_respect_the_limit():
    a, b = np.arange(10), np.arange(100, 107)
    w = windows([a, b], 3, None)
    assert w.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [100, 101, 102, 103], [103, 104, 105, 106]]
    assert windows([a, b], 3, 2).shape == (2, 4)


@pytest.mark.parametrize("arch", ["retnet", "transformer"])
def test_buckets_equal_a_direct_per_position_loss(tmp_path, arch, one_thread):
    extra = {"chunk_size": 8} if arch == "retnet" else {}  # 4x = 8 chunks: the chunkwise path is exercised
    model_dir = tiny_model_dir(tmp_path, arch, max_seq_len=SEQ, **extra)
    bin_path, arr = _tokens(tmp_path)
    out = tmp_path / "length.json"
    result = run_length(
        str(model_dir),
        str(bin_path),
        str(out),
        multipliers=[1, 4],
        max_tokens=256,
        batch_size=3,
        device="cpu",
        threads=1,
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))

    from transformers import AutoModelForCausalLM

    import archbench  # noqa: F401

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    for entry in result["entries"]:
        ctx = entry["context"]
        assert entry["context"] == entry["multiplier"] * SEQ and entry["n_windows"] == 256 // ctx
        # direct: one window at a time, parallel mode, plain cross-entropy per position
        rows = []
        for i in range(entry["n_windows"]):
            w = torch.from_numpy(arr[i * ctx : i * ctx + ctx + 1].astype(np.int64))[None]
            with torch.no_grad():
                logits = model(w[:, :-1], **({"retention_mode": "parallel"} if arch == "retnet" else {})).logits
            rows.append(F.cross_entropy(logits[0], w[0, 1:], reduction="none"))
        per_pos = torch.stack(rows).double().mean(0)
        expected = [float(per_pos[s:e].mean()) for s, e in geometric_buckets(ctx)]
        assert [b["loss"] for b in entry["buckets"]] == pytest.approx(expected, rel=1e-4)
        assert entry["mean_loss"] == pytest.approx(float(per_pos.mean()), rel=1e-4)
        assert entry["tail_loss"] == pytest.approx(float(per_pos[ctx // 2 :].mean()), rel=1e-4)
        if arch == "retnet":
            assert entry["mode"] == ("parallel" if ctx == SEQ else "chunkwise")


def test_learned_positions_are_skipped_beyond_max_seq_len(tmp_path, one_thread):
    model_dir = tiny_model_dir(tmp_path, "transformer", max_seq_len=SEQ, position="learned")
    bin_path, _ = _tokens(tmp_path)
    result = run_length(str(model_dir), str(bin_path), None, multipliers=[1, 2], max_tokens=64, device="cpu")
    ok, skipped = result["entries"]
    assert ok["multiplier"] == 1 and "mean_loss" in ok
    assert skipped == {
        "multiplier": 2,
        "context": 32,
        "skipped": "learned positions end at max_seq_len=16; context 32 has no position embedding",
    }


def test_too_little_test_data_names_the_cause(tmp_path, one_thread):
    from archbench.evaluation.common import EvalError

    model_dir = tiny_model_dir(tmp_path, "retnet", max_seq_len=SEQ)
    bin_path, _ = _tokens(tmp_path, n=40)
    with pytest.raises(EvalError, match="no window of 129 tokens; lower length.multipliers"):
        run_length(str(model_dir), str(bin_path), None, multipliers=[8], device="cpu")
    # a small test split: the contexts that fit are measured, the others skipped with the reason
    out = run_length(str(model_dir), str(bin_path), None, multipliers=[1, 8], device="cpu")
    assert "mean_loss" in out["entries"][0] and out["entries"][1] == {
        "multiplier": 8,
        "context": 128,
        "skipped": "the test split has 40 tokens in 1 shard(s): no window of 129 tokens",
    }


def test_same_targets_are_scored_at_1x_and_kx_inside_documents_and_the_controls_read_zero(tmp_path, one_thread):
    """The headline's far / near losses are the last SEQ targets of a window inside one document, read
    with the whole window (4x) and with the SEQ tokens before them (1x); unigram / bigram controls on the
    same windows differ by 0 (they read the same target with the same previous token)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import archbench  # noqa: F401

    model_dir = tiny_model_dir(tmp_path, "transformer", max_seq_len=SEQ)
    eos = AutoTokenizer.from_pretrained(model_dir).eos_token_id
    rng = np.random.default_rng(3)
    # documents of 30, 70, 140 and 50 tokens: only the 70- and 140-token ones hold a 4x window (65 tokens)
    docs = [rng.integers(4, 250, n) for n in (30, 70, 140, 50)]
    arr = np.concatenate([np.append(d, eos) for d in docs]).astype("<u2")
    bin_path = tmp_path / "docs.bin"
    arr.tofile(bin_path)
    (tmp_path / "docs.json").write_text(json.dumps({"dtype": "uint16", "n_tokens": len(arr)}))
    result = run_length(str(model_dir), str(bin_path), None, multipliers=[1, 4], max_tokens=1024, device="cpu")
    one, four = result["entries"]
    assert "same_targets" not in one
    st = four["same_targets"]
    starts = [31, 31 + 71, 31 + 71 + 64]  # doc 2 from its start; doc 3 twice (140 // 64 = 2 windows)
    assert st["aligned"] is True and st["n_windows"] == 3 and st["targets"] == SEQ
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    for i, s in enumerate(starts):
        w = torch.from_numpy(arr[s : s + 4 * SEQ + 1].astype(np.int64))[None]
        assert eos not in w[0].tolist()
        with torch.no_grad():
            far = F.cross_entropy(model(w[:, :-1]).logits[0, -SEQ:], w[0, -SEQ:])
            near = F.cross_entropy(model(w[:, -SEQ - 1 : -1]).logits[0], w[0, -SEQ:])
        assert st["far"][i] == pytest.approx(float(far), rel=1e-4)
        assert st["near"][i] == pytest.approx(float(near), rel=1e-4)
    for name in ("unigram", "bigram"):
        assert st["control"][name] == pytest.approx([0.0] * 3, abs=1e-6)


def test_ngram_controls_are_add_one_smoothed_counts():
    from archbench.evaluation.length import Ngram

    arr = np.array([1, 2, 1, 2, 3])
    batch = torch.tensor([[1, 2, 3, 0]])
    bigram = Ngram([arr], vocab=4, order=2).losses(batch)[0].tolist()
    # (1,2) seen 2 of 2 times after 1; (2,3) 1 of 2 after 2; (3,0) never, 3 never a previous token
    assert bigram == pytest.approx([-np.log(3 / 6), -np.log(2 / 6), -np.log(1 / 4)])
    unigram = Ngram([arr], vocab=4, order=1).losses(batch)[0].tolist()
    assert unigram == pytest.approx([-np.log(3 / 9), -np.log(2 / 9), -np.log(1 / 9)])
