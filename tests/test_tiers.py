"""Test tiers live in the test modules (``pytestmark = pytest.mark.<tier>`` at the top, or a tier mark on
one test). This fast test fails when a test runs the pipeline for real but carries no tier, so it cannot
land in the fast tier by accident; and when a test module builds a `snakemake` command line itself
instead of through tests/workflow_helpers.py.

The rule (CONTRIBUTING.md, "Tests"): a test must carry a tier mark when it, or a function or fixture of
its module that it uses, calls ``snakemake_popen(...)`` (a background run: the kill and concurrency tests),
or ``snakemake(...)`` with ``--cores`` or ``--profile`` (a real run, not ``-n``) unless the call stops before
training: every target it spells is a data-stage output (a path with ``data/``, ``tokenizer/`` or
``tokens/``), or it limits the jobs with ``--allowed-rules``, or it expects the run to fail
(``check=False``, e.g. a config refused at parse time). No target at all means the default target,
which trains every run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TIER_MARKERS = ("slow", "multiprocess", "faults", "slurm")  # pyproject.toml's markers, besides the fast default
REAL_RUN = ("--cores", "--profile")
DATA_OUTPUTS = ("data/", "tokenizer/", "tokens/")  # what the data stages write (archbench.layout)


def _strings(call: ast.Call) -> set[str]:
    """The string literals of a call; an f-string as its template (``f"tokens/{s}/index.json"`` ->
    ``"tokens/{}/index.json"``)."""
    inner = {id(v) for n in ast.walk(call) if isinstance(n, ast.JoinedStr) for v in n.values}
    out = set()
    for n in ast.walk(call):
        if isinstance(n, ast.JoinedStr):
            out.add("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values))
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in inner:
            out.add(n.value)
    return out


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _runs_pipeline(call: ast.Call) -> bool:
    name = _name(call.func)
    if name == "snakemake_popen":
        return True
    if name != "snakemake":
        return False
    strings = _strings(call)
    expects_failure = any(
        k.arg == "check" and isinstance(k.value, ast.Constant) and k.value.value is False for k in call.keywords
    )
    if expects_failure or not strings & set(REAL_RUN) or "--allowed-rules" in strings:
        return False
    targets = [t for t in strings if "/" in t]
    return not targets or not all(any(stage in t for stage in DATA_OUTPUTS) for t in targets)


def _tiers(node: ast.AST) -> set[str]:
    """The tier marks (``pytest.mark.<tier>``) anywhere in ``node``."""
    return {
        n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute)
        and n.attr in TIER_MARKERS
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "mark"
    }


def untiered_pipeline_tests(source: str) -> list[str]:
    """The tests of a module (its source) that run the pipeline without a tier mark (see the docstring)."""
    tree = ast.parse(source)
    module_marked = any(
        isinstance(n, ast.Assign) and any(_name(t) == "pytestmark" for t in n.targets) and _tiers(n.value)
        for n in tree.body
    )
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.setdefault(node.name, node)
    direct = {
        name: any(isinstance(n, ast.Call) and _runs_pipeline(n) for n in ast.walk(f)) for name, f in functions.items()
    }
    uses = {
        name: {_name(n.func) for n in ast.walk(f) if isinstance(n, ast.Call)} | {a.arg for a in f.args.args}
        for name, f in functions.items()
    }

    def heavy(name: str, seen: frozenset = frozenset()) -> bool:
        if direct[name]:
            return True
        return any(u in functions and u not in seen and heavy(u, seen | {name}) for u in uses[name])

    return [
        name
        for name, f in functions.items()
        if name.startswith("test")
        and heavy(name)
        and not module_marked
        and not _tiers(ast.Module(f.decorator_list, []))
    ]


def hand_built_commands(source: str) -> int:
    """How many lists or tuples in ``source`` spell ``"-m", "snakemake"`` (a command line built by hand)."""
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.List, ast.Tuple)):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            count += any(a == "-m" and b == "snakemake" for a, b in zip(values, values[1:]))
    return count


MODULES = sorted(TESTS.glob("test_*.py"))


def test_every_pipeline_running_test_carries_a_tier():
    found = {p.name: untiered_pipeline_tests(p.read_text()) for p in MODULES}
    assert {m: t for m, t in found.items() if t} == {}


def test_no_test_module_builds_a_snakemake_command_line_itself():
    found = {p.name: hand_built_commands(p.read_text()) for p in MODULES}
    assert {m: n for m, n in found.items() if n} == {}


UNMARKED = """
import pytest
from workflow_helpers import snakemake

@pytest.fixture
def ran(tmp_path):
    return helper(tmp_path)

def helper(path):
    return snakemake(path, "--cores", "2", configfile=path / "c.yaml")

def test_dry(tmp_path):
    snakemake(tmp_path, "-n")

def test_parse_error(tmp_path):
    snakemake(tmp_path, "--cores", "1", check=False)

def test_report_only(tmp_path):
    snakemake(tmp_path, "--cores", "1", "--allowed-rules", *RULES)

def test_data_only(tmp_path):
    snakemake(tmp_path, "--cores", "1", *(f"results/tokens/{s}/index.json" for s in SPLITS))

def test_data_then_a_run(tmp_path):
    snakemake(tmp_path, "--cores", "1", "results/tokens/test/index.json", f"results/runs/{RUN}/metrics.json")

def test_through_a_fixture(ran):
    pass

@pytest.mark.slow
def test_marked(tmp_path):
    helper(tmp_path)

def test_kill(tmp_path):
    snakemake_popen(tmp_path, "--cores", "1").kill()
"""


@pytest.mark.parametrize(
    "top,expected",
    [("", ["test_data_then_a_run", "test_through_a_fixture", "test_kill"]), ("pytestmark = pytest.mark.faults\n", [])],
    ids=["unmarked", "module-marked"],
)
def test_the_rule_finds_unmarked_pipeline_runs_through_helpers_and_fixtures(top, expected):
    assert untiered_pipeline_tests(top + UNMARKED) == expected
    assert hand_built_commands('cmd = [sys.executable, "-m", "snakemake", "-n"]\nok = ["-m", "pytest"]') == 1
