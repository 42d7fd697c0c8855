"""Latency benchmark: every context x batch entry; state bytes flat for RetNet, linear for the KV cache."""

import json
import re

import pytest

from archbench.evaluation.latency import latency_table, run_latency
from test_eval_fixtures import tiny_model_dir

CONTEXTS, BATCHES = [8, 32, 96], [1, 2]  # 96 > max_seq_len 64: longer contexts must work
KEYS = {
    "arch",
    "mode",
    "context",
    "batch_size",
    "prefill_ms",
    "decode_ms_median",
    "decode_ms_p10",
    "decode_ms_p90",
    "tokens_per_s",
    "state_bytes",
    "peak_rss_bytes",
    "peak_cuda_bytes",
    "threads",
    "load_1m",
    "timing_flag",
}


def _run(root, arch, **extra):
    model = tiny_model_dir(root, arch, **extra)
    out = root / f"{arch}-latency.json"
    result = run_latency(
        str(model),
        str(out),
        CONTEXTS,
        BATCHES,
        new_tokens=2,
        trials=2,
        warmup=0,
        recompute_max_context=8,
        device="cpu",
        threads=1,
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("latency")
    return {arch: _run(root, arch) for arch in ("retnet", "transformer")}


@pytest.mark.parametrize("arch,mode", [("retnet", "recurrent"), ("transformer", "kv_cache")])
def test_every_context_and_batch_is_measured(results, arch, mode):
    entries = results[arch]["entries"]
    cached = {(e["context"], e["batch_size"]) for e in entries if e["mode"] == mode}
    assert cached == {(c, b) for c in CONTEXTS for b in BATCHES}
    assert {(e["context"], e["batch_size"]) for e in entries if e["mode"] == "recompute"} == {(8, 1), (8, 2)}
    for e in entries:
        assert KEYS <= set(e) and e["arch"] == arch
        assert 0 < e["decode_ms_p10"] <= e["decode_ms_median"] <= e["decode_ms_p90"]
        assert e["prefill_ms"] > 0 and e["tokens_per_s"] > 0 and e["peak_rss_bytes"] > 0
        assert e["peak_cuda_bytes"] is None and e["beyond_trained_length"] == (e["context"] > 64)
        assert (e["state_bytes"] is None) == (e["mode"] == "recompute")
        assert e["threads"] == 1 and e["timing_flag"] in ("", "noisy", "under load")
        assert (e["timing_flag"] == "under load") == (e["load_1m"] > 1.5)  # the job's one thread + 0.5


def test_retnet_state_is_the_same_size_at_every_context(results):
    for batch in BATCHES:
        sizes = {
            e["state_bytes"]
            for e in results["retnet"]["entries"]
            if e["mode"] == "recurrent" and e["batch_size"] == batch
        }
        # per layer: S [B, heads, key dim, value dim] float32 (+ at most a position per row)
        assert len(sizes) == 1 and batch * 2 * 16 * 32 * 4 <= sizes.pop() <= batch * (2 * 16 * 32 * 4 + 8)
    assert results["retnet"]["summary"]["state_growth"]["recurrent"] == 1.0


def test_transformer_kv_cache_grows_linearly(results):
    for batch in BATCHES:
        sizes = {
            e["context"]: e["state_bytes"]
            for e in results["transformer"]["entries"]
            if e["mode"] == "kv_cache" and e["batch_size"] == batch
        }
        # keys + values: 2 x [B, context, embed_dim] float32, 1 layer
        assert sizes == {c: 2 * batch * c * 32 * 4 for c in CONTEXTS}
    assert results["transformer"]["summary"]["state_growth"]["kv_cache"] == 96 / 8


def test_summary_and_table(results):
    summary = results["retnet"]["summary"]
    assert summary["batch_size"] == 1 and set(summary["decode_ms_median"]) == {"recurrent", "recompute"}
    assert set(summary["recompute_speedup"]) == {"8"}
    table = latency_table(list(results.values()))
    assert "retnet recurrent" in table and "transformer kv_cache" in table
    assert re.search(r"^\|\s+96 \|", table, re.M), table


def test_learned_positions_beyond_max_seq_len_are_skipped_not_fatal(tmp_path):
    out = run_latency(
        str(tiny_model_dir(tmp_path, "transformer", position="learned")),
        None,
        [8, 96],
        [1],
        new_tokens=1,
        trials=1,
        warmup=0,
        recompute_max_context=0,
        device="cpu",
        threads=1,
    )
    by_ctx = {e["context"]: e for e in out["entries"]}
    assert by_ctx[8]["decode_ms_median"] > 0 and "max_seq_len" in by_ctx[96]["skipped"]


def test_threads_apply_inside_and_are_restored(tmp_path):
    import torch

    before = torch.get_num_threads()
    out = run_latency(
        str(tiny_model_dir(tmp_path, "retnet")),
        None,
        [8],
        [1],
        new_tokens=1,
        trials=1,
        warmup=0,
        recompute_max_context=0,
        device="cpu",
        threads=1,
    )
    assert out["summary"]["threads"] == 1 and torch.get_num_threads() == before


def test_any_other_error_fails_with_its_message(tmp_path, monkeypatch):
    """Only a too-long context is `skipped`; a bug (here a ValueError inside the model) fails the job."""
    from archbench.evaluation import latency

    def broken(*args, **kwargs):
        raise ValueError("shape mismatch in the decode step")

    monkeypatch.setattr(latency, "trial", broken)
    with pytest.raises(ValueError, match="shape mismatch in the decode step"):
        run_latency(
            str(tiny_model_dir(tmp_path, "retnet")),
            str(tmp_path / "latency.json"),
            [8],
            [1],
            new_tokens=1,
            trials=1,
            warmup=0,
            recompute_max_context=0,
            device="cpu",
            threads=1,
        )
    assert not (tmp_path / "latency.json").exists()


def test_too_long_context_is_the_dedicated_exception(tmp_path):
    import torch

    from archbench.evaluation.common import load_model
    from archbench.models.constraints import ContextTooLong

    model, _, _ = load_model(str(tiny_model_dir(tmp_path, "transformer", position="learned")), "cpu")
    with pytest.raises(ContextTooLong, match="max_seq_len=64"):
        model(torch.zeros(1, 96, dtype=torch.long))
