"""envs/archbench.yaml (for `--sdm conda`) lists exactly the package's dependencies."""

import re

import tomllib
import yaml

from workflow_helpers import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _env():
    return yaml.safe_load((REPO / "envs/archbench.yaml").read_text())


def test_conda_env_mirrors_pyproject_dependencies_pinned_like_pip():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pip = next(d["pip"] for d in _env()["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(map(_name, pip)) == sorted(map(_name, deps))  # the same packages
    pins = dict(
        (_name(m.group(1)), m.group(2))
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / "constraints.txt").read_text(), re.M)
    )
    assert {_name(p): p.split("==", 1)[1] for p in pip} == {_name(d): pins[_name(d)] for d in deps}


def test_conda_env_python_satisfies_requires_python():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    python = next(d for d in _env()["dependencies"] if isinstance(d, str) and d.startswith("python"))
    minimum = tuple(int(x) for x in requires.removeprefix(">=").split("."))
    assert tuple(int(x) for x in python.split("=")[1].split(".")) >= minimum


def test_conda_env_documents_how_jobs_import_archbench():
    assert "pip install --no-deps -e ." in (REPO / "envs/archbench.yaml").read_text()
