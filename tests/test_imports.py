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


def test_no_module_import_circle():
    """No circle of imports between archbench's modules, at module level or inside functions alike
    (import-linter's acyclic_siblings contract misses one that passes through a parent package)."""
    import grimp

    graph = grimp.build_graph("archbench", cache_dir=None)
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert circles == []
