"""A wheel installed non-editable works: built from this tree, installed into a folder of its own and put
first on PYTHONPATH (so neither src/ nor an editable install is what `import archbench` finds), it runs
`archbench --help`, a dry run of the repository's Snakefile in a fresh folder, and the default run's
first stage (download: the embedded corpus, no network). Everything the package reads must be inside it
(pyproject's package-data)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workflow_helpers import REPO, dry_run_counts, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The wheel's install folder. Built from a copy of the package's sources, so the build leaves
    nothing (build/, *.egg-info) in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src/archbench", src / "src/archbench", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (tmp / "dist").glob("archbench-*.whl")
    site = tmp / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True, timeout=600
    )
    return site


@pytest.fixture
def outside(site, tmp_path, monkeypatch):
    """Commands run from a folder outside the checkout, with the wheel's folder as the whole PYTHONPATH."""
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_installed_package_is_the_wheel_and_holds_its_schema(site, outside):
    out = python(
        "import archbench, archbench.config as c\n"
        "print(archbench.__file__); print(c.SCHEMA_PATH)\n"
        "print(sorted(c.load_schema()['properties'])[:3])"
    ).splitlines()
    assert Path(out[0]).is_relative_to(site) and Path(out[1]) == site / "archbench/schema.yaml"
    assert out[2] == "['archs', 'data', 'emissions']"


def test_archbench_help_runs(site, outside):
    proc = subprocess.run([str(site / "bin/archbench"), "--help"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "install-profile" in proc.stdout and "harness" in proc.stdout


def test_a_dry_run_and_the_first_stage_in_a_fresh_folder(outside):
    fresh = outside / "fresh"
    counts = dry_run_counts(fresh)
    assert {"download", "train", "summary", "all"} <= set(counts)
    assert not (fresh / "results").exists()  # a dry run writes nothing
    snakemake(fresh, "--cores", "1", "--until", "download")
    (raw,) = (fresh / "results/data/raw").glob("*.parquet")
    assert len(pd.read_parquet(raw)) == 1189  # the embedded corpus: the King James Bible's chapters
    assert not (fresh / "results/data/split").exists()  # the first stage only
