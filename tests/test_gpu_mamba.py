"""Mamba-2's kernel selection (transformers' own: the mamba_ssm / causal_conv1d functions when the packages
import, used for inputs on a device they support, the PyTorch path otherwise), exercised on CPU with
stand-in packages that have the kernels' module layout and record their calls instead of computing."""

import json
import subprocess
import sys

import torch

from archbench.models import build_model

MODULES = {
    "mamba_ssm/__init__.py": "",
    "mamba_ssm/ops/__init__.py": "",
    "mamba_ssm/ops/triton/__init__.py": "",
    "mamba_ssm/ops/triton/ssd_combined.py": "mamba_chunk_scan_combined mamba_split_conv1d_scan_combined",
    "mamba_ssm/ops/triton/selective_state_update.py": "selective_state_update",
    "causal_conv1d/__init__.py": "causal_conv1d_fn causal_conv1d_update",
}
SETTINGS = dict(vocab_size=50, embed_dim=32, heads=4, layers=2, max_seq_len=64, ssm_state_size=8, ssm_chunk_size=8)

RUN = """
import json, sys, torch
from transformers.integrations import hub_kernels
if sys.argv[1] == "cpu-supported":  # pretend the packages run on CPU: their functions must then be called
    for name in ("mamba_ssm", "causal_conv1d"):
        hub_kernels._PACKAGE_SUPPORTED_DEVICES[name] = ("cuda", "cpu")
from archbench.models import build_model
torch.manual_seed(0)
model = build_model("mamba2", **json.loads(sys.argv[2])).eval()
x = torch.arange(3, 23).view(1, 20)
try:
    with torch.no_grad():
        print(json.dumps({"logits": model(input_ids=x).logits.flatten().tolist()}))
except RuntimeError as e:
    print(json.dumps({"error": str(e)}))
"""


def _stand_ins(root):
    for path, names in MODULES.items():
        f = root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(
            "".join(
                f"def {n}(*args, **kwargs):\n    raise RuntimeError('stand-in {n} called')\n" for n in names.split()
            )
        )
    return root


def _run(tmp_path, mode):
    import archbench

    src = archbench.__path__[0].rsplit("/", 1)[0]  # this checkout's src/, ahead of the stand-ins
    env = {"PATH": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{src}:{_stand_ins(tmp_path)}"}
    res = subprocess.run(
        [sys.executable, "-c", RUN, mode, json.dumps(SETTINGS)], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_mamba_kernels_are_picked_when_present_and_cpu_falls_back(tmp_path):
    torch.manual_seed(0)
    model = build_model("mamba2", **SETTINGS).eval()  # no mamba_ssm here: the PyTorch path
    with torch.no_grad():
        ref = model(input_ids=torch.arange(3, 23).view(1, 20)).logits.flatten()
    # packages present, inputs on CPU (not a device they support): the same PyTorch path, same numbers
    present = _run(tmp_path, "cpu")
    assert "error" not in present, present
    assert torch.allclose(torch.tensor(present["logits"]), ref, atol=1e-6)
    # packages present and the input device supported: transformers calls them
    picked = _run(tmp_path, "cpu-supported")
    assert picked.get("error", "").startswith("stand-in causal_conv1d_fn called"), picked
