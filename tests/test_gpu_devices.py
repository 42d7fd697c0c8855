"""A forced GPU on a machine without one: one line naming the config key, before the job does any work."""

import pytest
import torch

from archbench.devices import require_device
from archbench.errors import ArchbenchError, ConfigError
from archbench.evaluation.common import load_model, resolve_device
from archbench.training.run import train_run  # imported before torch.cuda is patched (dynamo reads it)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.parametrize("value", ["auto", "cpu", None])
def test_unforced_devices_pass(no_gpu, value):
    require_device("training.accelerator", value)


@pytest.mark.parametrize("value", ["gpu", "cuda", "cuda:1", "mps"])
def test_forced_gpu_without_one_is_one_line_naming_the_key(no_gpu, value):
    with pytest.raises(ConfigError) as err:
        require_device("training.accelerator", value)
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, ArchbenchError)
    kind = "MPS" if value == "mps" else "CUDA"
    assert msg.startswith(f"training.accelerator: {value!r} needs a {kind} device but this machine has none")
    assert msg.endswith("set it to 'auto' or 'cpu', or run the job where a GPU is allocated")


def test_visible_devices_are_named(no_gpu, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match=r"CUDA_VISIBLE_DEVICES=''"):
        require_device("eval.device", "cuda")


def test_forced_gpu_passes_when_cuda_is_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for value in ("gpu", "cuda", "cuda:0"):
        require_device("eval.device", value)


def test_training_refuses_before_writing_anything(no_gpu, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"^training\.accelerator: 'gpu' needs a CUDA device"):
        train_run(
            "transformer", 0, {"accelerator": "gpu"}, {}, str(tmp_path / "tok"), str(run_dir), str(tmp_path / "s")
        )
    assert not run_dir.exists() and not (tmp_path / "s").exists()


def test_evaluation_names_eval_device(no_gpu, tmp_path):
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^eval\.device: 'cuda' needs a CUDA device"):
        resolve_device("cuda")
    (tmp_path / "config.json").write_text("{}")  # refused before the model is read
    with pytest.raises(ConfigError, match=r"^eval\.device: 'cuda'"):
        load_model(tmp_path, device="cuda")
