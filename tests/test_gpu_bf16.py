"""bf16 mixed precision on CPU (autocast works there): every registered architecture's loss stays fp32
and finite under bf16 autocast, and the tiny pipeline runs end to end with ``training.precision:
bf16-mixed`` for all of them."""

import json
import math

import pytest
import torch

from archbench.models import arch_names
from archbench.training.module import CausalLMModule
from workflow_helpers import snakemake, tiny_config

SETTINGS = dict(vocab_size=64, embed_dim=32, ffn_dim=64, heads=2, layers=1, max_seq_len=32)


@pytest.mark.parametrize("arch", arch_names())
def test_loss_is_fp32_under_bf16_autocast(arch):
    """The training module's loss (models.common.lm_loss) is fp32 whatever the logits' dtype, and the
    backward pass gives finite fp32 gradients (bf16-mixed keeps fp32 weights)."""
    torch.manual_seed(0)
    module = CausalLMModule(arch, dict(SETTINGS), learning_rate=1e-3)
    batch = torch.randint(3, 64, (2, 33))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = module._loss(batch)
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    loss.backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and g.isfinite().all() for g in grads)


@pytest.mark.slow
def test_tiny_pipeline_end_to_end_in_bf16_mixed_for_every_arch(tmp_path):
    archs = arch_names()
    cfg = tiny_config(
        tmp_path,
        archs=archs,
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        model={"layers": 1, "segment_lengths": [16, 32], "dilated_ratios": [1, 2]},
        training={
            "batch_size": 8,
            "max_steps": 20,
            "warmup_steps": 5,
            "val_check_interval": 10,
            "checkpoint_every_n_steps": 10,
            "log_every_n_steps": 5,
            "precision": "bf16-mixed",
        },
    )
    snakemake(tmp_path, "--cores", "2", configfile=cfg, timeout=3600)
    results = tmp_path / "results"
    for arch in archs:
        (run,) = (results / "runs" / arch).glob("*/seed~0")
        metrics = json.loads((run / "metrics.json").read_text())
        assert math.isfinite(metrics["test_loss"]) and metrics["test_loss"] < metrics["uniform_loss"], arch
        assert metrics["global_step"] == 20, arch
        config = json.loads((run / "model" / "config.json").read_text())
        assert config.get("dtype", config.get("torch_dtype")) in (None, "float32"), arch  # fp32 master weights
        (log,) = (results / "logs" / "train" / arch).rglob("seed~0.log")
        assert "Using bfloat16 Automatic Mixed Precision (AMP)" in log.read_text(errors="replace"), arch  # Lightning
    assert (results / "report" / "summary.md").exists()
