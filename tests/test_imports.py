"""The Snakefile parse and the data and report jobs never import torch (seconds per job): no import hook,
a lazy `archbench.models`, and a torch-free registry, config check and evaluation registry."""

import subprocess
import sys

# What the Snakefile parse, the data jobs (download, split, train_tokenizer, tokenize, eval_tasks) and the
# report jobs (collect, plots, plot_latency, summary) import.
MODULES = [
    "archbench",
    "archbench.models",
    "archbench.models.registry",
    "archbench.models.constraints",
    "archbench.config",
    "archbench.evaluation.registry",
    "archbench.evaluation.columns",
    "archbench.evaluation.common",
    "archbench.data.sources",
    "archbench.data.split",
    "archbench.data.tokenizer",
    "archbench.data.tokenize",
    "archbench.evaluation.tasks",
    "archbench.report.collect",
    "archbench.report.compare",
    "archbench.report.plots",
    "archbench.report.summary",
]


def run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_data_and_report_modules_import_neither_torch_nor_transformers():
    out = run(
        "import sys\n" + "".join(f"import {m}\n" for m in MODULES) + "from archbench.models.registry import ARCHS\n"
        "[a for a in ARCHS.values()]\n"
        "print(sorted(m for m in ('torch', 'transformers', 'torchscale', 'lightning') if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_the_tokenizer_job_imports_transformers_but_not_torch(tmp_path):
    """train_tokenizer saves through transformers; without an import hook that no longer pulls in torch."""
    import pandas as pd

    split = tmp_path / "train"
    split.mkdir()
    pd.DataFrame({"text": ["In the beginning God created the heaven and the earth."] * 40}).to_parquet(
        split / "part.0.parquet"
    )
    out = run(
        "import sys\nfrom archbench.data.tokenizer import train_tokenizer\n"
        f"train_tokenizer({str(split)!r}, {str(tmp_path / 'tok')!r}, vocab_size=300, min_frequency=1)\n"
        "print('transformers' in sys.modules, 'torch' in sys.modules)"
    )
    assert out.split() == ["True", "False"]


def test_lazy_names_still_import():
    out = run(
        "import sys\nimport archbench.models as m\nprint('torch' in sys.modules)\n"
        "from archbench.models import RetNetForCausalLM, build_model\nprint('torch' in sys.modules)"
    )
    assert out.split() == ["False", "True"]
