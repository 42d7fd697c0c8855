"""Training runs on real (tiny) data: metrics.json contents, export, and exact resume after a crash."""

import json
import math

import lightning as L
import pytest
import torch

from archbench.config import run_settings, validate_config
from archbench.training import train_run


def settings(**overrides):
    cfg = validate_config(
        {
            "grid": {"learning_rate": [5.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
            "model": {"layers": 1, "dropout": 0.1},
            "training": {
                "batch_size": 4,
                "max_steps": 12,
                "warmup_steps": 2,
                "val_check_interval": 5,
                "checkpoint_every_n_steps": 4,
                "log_every_n_steps": 2,
                "early_stopping": {"enabled": False},
            },
        }
    )
    point = {"learning_rate": 5.0e-3, "embed_dim": 32, "ffn_dim": 64, "heads": 2, "seq_len": 32}
    return {**run_settings(cfg, point), **overrides}


def run(tmp_path, tiny_tokens, name, arch="retnet", callbacks=None, **overrides):
    return train_run(
        arch=arch,
        seed=0,
        settings=settings(**overrides),
        tokens=tiny_tokens["tokens"],
        tokenizer_dir=tiny_tokens["tokenizer"],
        run_dir=str(tmp_path / name / "run"),
        scratch_dir=str(tmp_path / name / "scratch"),
        emissions={"enabled": False},
        threads=1,
        callbacks=callbacks,
    )


class Crash(L.Callback):
    """Simulates a killed job: fails after `step` optimizer steps, past the periodic checkpoint."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated kill")


def weights(run_dir):
    from transformers import AutoModelForCausalLM

    from archbench.models import register

    register()

    return AutoModelForCausalLM.from_pretrained(f"{run_dir}/model").state_dict()


def test_metrics_json_describes_the_exported_model(tmp_path, tiny_tokens):
    metrics = run(tmp_path, tiny_tokens, "a", arch="transformer")
    on_disk = json.loads((tmp_path / "a/run/metrics.json").read_text())
    assert on_disk["test_loss"] == pytest.approx(metrics["test_loss"])
    # validated at the last step too (12 is no multiple of the interval 5): the exported model is step 12's
    assert on_disk["global_step"] == on_disk["trained_steps"] == 12 and on_disk["resumed_from_step"] == 0
    assert on_disk["tokens_seen"] == 12 * 4 * 32
    assert on_disk["train_flops"] == 12 * 4 * 32 * on_disk["train_flops_per_token"]
    assert on_disk["timed_batches"] == 12 and on_disk["tokens_per_s"] > 0
    assert on_disk["train_step_ms_p10"] <= on_disk["train_step_ms_median"] <= on_disk["train_step_ms_p90"]
    assert on_disk["timing_flag"] in ("", "noisy", "under load")
    # bits per byte beside nats per token: the validation text's UTF-8 bytes per token (shard metadata)
    assert 1.5 < on_disk["val_bytes_per_token"] < 8
    assert on_disk["val_bits_per_byte"] == pytest.approx(
        on_disk["val_loss"] / math.log(2) / on_disk["val_bytes_per_token"]
    )
    load = on_disk["provenance"]["load"]
    assert len(load["load_avg"]) == 3 and load["cpu_count"] >= 1
    assert on_disk["val_ppl"] == pytest.approx(math.exp(on_disk["val_loss"]), rel=1e-5)
    assert on_disk["val_loss"] < math.log(384)
    assert on_disk["params_total"] == sum(t.numel() for t in weights(tmp_path / "a/run").values())
    assert (tmp_path / "a/scratch/last.ckpt").exists()  # resumable state outside the run dir
    assert not (tmp_path / "a/run/last.ckpt").exists()


def test_crashed_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path, tiny_tokens):
    reference = run(tmp_path, tiny_tokens, "ref")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path, tiny_tokens, "killed", callbacks=[Crash(step=7)])
    assert torch.load(tmp_path / "killed/scratch/last.ckpt", weights_only=False)["global_step"] == 4
    resumed = run(tmp_path, tiny_tokens, "killed")
    assert resumed["resumed_from_step"] == 4 and resumed["global_step"] == 12
    a, b = weights(tmp_path / "ref/run"), weights(tmp_path / "killed/run")
    assert a.keys() == b.keys()
    for key in a:  # data position, dropout RNG, optimizer and LR schedule all restored: bit-identical
        assert torch.equal(a[key], b[key]), key
    assert resumed["test_loss"] == reference["test_loss"]
    # the loss curve keeps the steps logged before the kill, once each
    import pandas as pd

    ref_log, res_log = (pd.read_csv(tmp_path / f"{n}/run/logs/csv/metrics.csv") for n in ("ref", "killed"))
    assert sorted(res_log.dropna(subset=["val_loss"]).step) == sorted(ref_log.dropna(subset=["val_loss"]).step)
    assert sorted(res_log.dropna(subset=["train_loss"]).step) == sorted(ref_log.dropna(subset=["train_loss"]).step)


def test_early_stopping_is_read_from_the_callback_without_max_steps(tmp_path, tiny_tokens):
    # min_delta larger than any possible gain: the second validation (step 10) stops the epoch-long run
    metrics = run(
        tmp_path, tiny_tokens, "es", max_steps=None, early_stopping={"enabled": True, "patience": 1, "min_delta": 10.0}
    )
    assert metrics["early_stopped"] is True and metrics["global_step"] == 10
    assert metrics["world_sizes"] == [1] and metrics["world_size"] == 1


def test_the_exported_checkpoint_is_the_last_step_when_max_steps_is_no_multiple_of_the_interval(tmp_path, tiny_tokens):
    # 13 steps, validation every 5: Lightning alone validates at 5 and 10 and the export was step 10's
    # model counted as 13 steps of tokens; now step 13 is validated and checkpointed as well.
    metrics = run(tmp_path, tiny_tokens, "odd", max_steps=13, learning_rate=5.0e-3)
    best = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    assert best["global_step"] == metrics["global_step"] == metrics["trained_steps"] == 13
    assert metrics["tokens_seen"] == 13 * 4 * 32
    import pandas as pd

    val_steps = pd.read_csv(tmp_path / "odd/run/logs/csv/metrics.csv").dropna(subset=["val_loss"]).step
    # Lightning logs a validation inside fit at global_step - 1 (4, 9 and now 12); the export's evaluation at 13
    assert sorted(val_steps) == [4, 9, 12, 13]
