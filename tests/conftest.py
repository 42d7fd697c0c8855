"""Shared pytest fixtures and the test tiers. Tests never touch the network: the Hugging Face hub is
forced offline.

Tiers (markers, registered in pyproject.toml): the README's `python -m pytest` runs the fast tier,
everything not marked below (pyproject's addopts deselects the rest); .ci/run then runs
`-m "(slow or multiprocess or faults) and not slurm"` and, on a local cluster, `-m slurm`.
A module's tier is set here, not in the test files, so a new end-to-end test module is tiered in one place.
"""

import pytest

# test module (or module::test) -> its tier. slow: end-to-end Snakemake runs that train and evaluate
# (a minute or more each on 2 cores); multiprocess: several training processes; faults: killed jobs and
# failing grid points; slurm: needs a running Slurm cluster.
TIERS = {
    "test_workflow_run.py": "slow",
    "test_data_small_corpus.py::test_24_text_files_run_end_to_end_with_the_default_splits": "slow",
    "test_workflow_modern.py": "slow",
    "test_plugin_arch.py::test_toy_architecture_runs_through_the_tiny_pipeline": "slow",
    "test_plugin_eval.py::test_plugin_evaluation_runs_through_the_pipeline": "slow",
    "test_training_ddp.py": "multiprocess",
    "test_workflow_failures.py": "faults",
    "test_resume_kill.py": "faults",
    "test_slurm.py": "slurm",
    "test_slurm_sbatch.py": "slurm",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.name
        test = f"{module}::{item.originalname}"
        for key in (module, test):
            if key in TIERS:
                item.add_marker(getattr(pytest.mark, TIERS[key]))


@pytest.fixture(autouse=True)
def _hf_offline(monkeypatch):
    """Offline mode for every test, so nothing waits on (or downloads from) the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: extra threads only contend on the shared CPU (3x slower measured)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_tokens(tmp_path_factory):
    """Tokenizer + packed train/validation/test token shards (``tokens[split]`` is the split's index.json)
    from 40 chapters of the default corpus, made by the real data stages (a couple of seconds)."""
    from archbench.data.download import download
    from archbench.data.split import split_shard
    from archbench.data.tokenize import tokenize_split, write_token_index
    from archbench.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tiny_tokens")
    download({"source": "default", "max_documents": 40}, str(root / "raw.parquet"))
    splits = {s: str(root / "split" / s / "00000-kjv.parquet") for s in ("train", "validation", "test")}
    split_shard(
        str(root / "raw.parquet"),
        splits,
        {"train": 0.8, "validation": 0.1, "test": 0.1},
        shuffle=False,
        seed=0,
        total=40,
    )
    train_tokenizer([splits["train"]], str(root / "tokenizer"), vocab_size=384)
    tokens = {}
    for split, path in splits.items():
        out = root / "tokens" / split
        tokenize_split(path, str(root / "tokenizer"), str(out / "00000-kjv.bin"), str(out / "00000-kjv.json"))
        tokens[split] = str(out / "index.json")
        write_token_index(split, [str(out / "00000-kjv.json")], tokens[split])
    return {"tokenizer": str(root / "tokenizer"), "tokens": tokens}
