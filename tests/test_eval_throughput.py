"""Throughput vs batch: one row per batch size; the state grows with the batch, per sequence it is constant."""

import json

import pytest

from archbench.evaluation.throughput import run_throughput
from test_eval_fixtures import tiny_model_dir

BATCHES = [1, 2, 4, 8]


@pytest.mark.parametrize("arch,mode", [("retnet", "recurrent"), ("transformer", "kv_cache")])
def test_a_row_for_every_batch_size(tmp_path, arch, mode, one_thread):
    out = tmp_path / "throughput.json"
    result = run_throughput(
        str(tiny_model_dir(tmp_path, arch)),
        str(out),
        BATCHES + [2],
        context=24,
        new_tokens=2,
        trials=1,
        warmup=0,
        device="cpu",
        threads=1,
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    rows = result["rows"]
    assert [r["batch_size"] for r in rows] == BATCHES and {r["mode"] for r in rows} == {mode}
    assert all(r["context"] == 24 and r["tokens_per_s"] > 0 for r in rows)
    per_seq = {r["state_bytes_per_sequence"] for r in rows}
    assert len(per_seq) == 1 and rows[-1]["state_bytes"] == 8 * rows[0]["state_bytes"]


def test_learned_positions_past_max_seq_len_give_skipped_rows(tmp_path, one_thread):
    model = tiny_model_dir(tmp_path, "transformer", max_seq_len=16, position="learned")
    result = run_throughput(str(model), None, [1, 2], context=32, new_tokens=1, trials=1, warmup=0, device="cpu")
    assert [r["batch_size"] for r in result["rows"]] == [1, 2]
    assert all("learned positions stop at max_seq_len=16" in r["skipped"] for r in result["rows"])
