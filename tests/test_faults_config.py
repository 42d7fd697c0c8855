"""Issue 32 (values, bounded parsing, configs run no code): every bad value gives one line naming the key
before any job. Pure validation calls are fast; the cases whose danger lies in Snakemake's own reading
of the file (alias bomb, YTE, the grid's size) also run one `snakemake -n` each (tier `faults`)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from archbench.config import (
    MAX_CONFIG_VALUES,
    MAX_RUNS,
    check_config_size,
    check_grid_size,
    check_plain_yaml,
    validate_config,
)
from archbench.errors import ConfigError
from workflow_helpers import SNAKEFILE, snakemake_command

DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/config.yaml").read_text())
NAN, INF = float("nan"), float("inf")
TEN = {"learning_rate": [round(0.001 * (i + 1), 3) for i in range(10)], "embed_dim": list(range(8, 18))}
TEN |= {"ffn_dim": list(range(8, 18)), "heads": list(range(1, 11)), "seq_len": list(range(8, 18))}


def config(tmp_path: Path, **changes) -> dict:
    cfg = copy.deepcopy(DEFAULT)
    cfg["results"] = str(tmp_path / "results")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


def refused(cfg: dict, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, overrides=overrides)
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"training__early_stopping": {"min_delta": NAN}},
            "config key 'training.early_stopping.min_delta': nan is not a finite number (NaN and infinities are refused)",
        ),
        ({"training__betas": [0.9, NAN]}, "config key 'training.betas[1]': nan is not a finite number"),
        ({"training__gradient_clip_val": INF}, "config key 'training.gradient_clip_val': inf is not a finite number"),
        ({"generate__temperature": NAN}, "config key 'generate.temperature': nan is not a finite number"),
        ({"generate__top_p": NAN}, "config key 'generate.top_p': nan is not a finite number"),
        ({"data__shard_size_mb": INF}, "config key 'data.shard_size_mb': inf is not a finite number"),
        ({"data__min_shard_mb": -INF}, "config key 'data.min_shard_mb': -inf is not a finite number"),
        ({"grid__learning_rate": [NAN]}, "config key 'grid.learning_rate[0]': nan is not a finite number"),
        ({"grid__dropout": [0.0, NAN]}, "config key 'grid.dropout[1]': nan is not a finite number"),
        ({"model__hf": {"llama": {"rope_theta": NAN}}}, "config key 'model.hf.llama.rope_theta': nan is not a finite"),
        ({"grid__embed_dim": [32.0]}, "config key 'grid.embed_dim[0]': 32.0 is not an integer (write 32)"),
        ({"training__batch_size": 8.0}, "config key 'training.batch_size': 8.0 is not an integer (write 8)"),
        ({"grid__layers": [1, 2.5]}, "config key 'grid.layers[1]': 2.5 is not an integer"),
        ({"seeds": [4294967296]}, "config key 'seeds[0]': 4294967296 is greater than the maximum of 4294967295"),
        ({"seed": 2**64}, "config key 'seed': 18446744073709551616 is greater than the maximum of 4294967295"),
        ({"data__mqar": {"seed": -1}}, "config key 'data.mqar.seed': -1 is less than the minimum of 0"),
        ({"training__devices": 0}, "config key 'training.devices': 0 is less than the minimum of 1"),
        ({"training__devices": -7}, "config key 'training.devices': -7 is less than the minimum of 1"),
        ({"training__devices": "lots"}, "config key 'training.devices': 'lots' does not match"),
        ({"grid__devices": [1, "0"]}, "config key 'grid.devices[1]': '0' does not match"),
        (
            {"archs": ["hf:llama", "hf-llama"]},
            "config key 'archs[1]': 'hf-llama' is the same architecture as archs[0] ('hf:llama'); give each once",
        ),
        (
            {"grid__devices": [1, "1"]},
            "config key 'grid.devices[1]': '1' is the same value as grid.devices[0] (1); give each value once",
        ),
        (
            {"grid__dropout": [0, 0.0]},
            "config key 'grid.dropout[1]': 0.0 is the same value as grid.dropout[0] (0); give each value once",
        ),
    ],
)
def test_bad_value_is_one_line_naming_the_key(tmp_path, changes, message):
    assert refused(config(tmp_path, **changes)).startswith(message)
    assert not (tmp_path / "results").exists()


def test_nan_given_on_the_command_line_is_refused_too(tmp_path):
    """`--config training='{weight_decay: .nan}'` arrives as a string and is read by the schema's type."""
    cfg = config(tmp_path, training={**DEFAULT.get("training", {}), "weight_decay": ".nan"})
    message = refused(cfg, overrides={"training": {"weight_decay": ".nan"}})
    assert message.startswith("config key 'training.weight_decay': nan is not a finite number")


def test_nan_in_a_grid_override_is_refused_after_it_is_read(tmp_path):
    cfg = config(tmp_path, grid={**DEFAULT["grid"], "dropout": ["0.1", ".nan"]})
    message = refused(cfg, overrides={"grid": {"dropout": ["0.1", ".nan"]}})
    assert message.startswith("config key 'grid.dropout[1]': nan is not a finite number")


def test_good_devices_pass(tmp_path):
    for devices in (1, 8, "auto", "2", "0,1"):
        assert validate_config(config(tmp_path, training__devices=devices))["training"]["devices"] == devices


# ---- results ---------------------------------------------------------------------------------------


def test_results_at_the_filesystem_root_is_refused(tmp_path):
    assert refused(config(tmp_path, results="/")) == (
        "config key 'results': '/' is the filesystem root; give a folder of its own"
    )


@pytest.mark.parametrize("results", ["res{ult}", "results/{arch}", "res*", "res[12]"])
def test_results_with_wildcards_or_globs_is_refused(tmp_path, results):
    assert refused(config(tmp_path, results=results)).startswith(f"config key 'results': {results!r} contains ")


def test_results_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x")
    path = str(tmp_path / "taken")
    assert refused(config(tmp_path, results=path)) == f"config key 'results': {path!r} is a file, not a folder"


def test_results_that_cannot_be_written_is_refused(tmp_path):
    # /proc/sys refuses new entries to every user, root included (a chmod would not stop root)
    assert refused(config(tmp_path, results="/proc/sys/archbench")) == (
        "config key 'results': '/proc/sys/archbench' cannot be written (its nearest existing folder, "
        "'/proc/sys', is not writable)"
    )


def test_results_inside_the_corpus_and_corpus_inside_results_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    local = {"source": "local", "path": "."}
    assert refused(config(tmp_path, results="results", data=local)) == (
        "config key 'results': 'results' is inside data.path '.': the corpus would include the pipeline's own "
        "outputs; put results outside the corpus folder"
    )
    inside = {"source": "local", "path": "out/corpus/*.jsonl"}
    assert refused(config(tmp_path, results="out", data=inside)) == (
        "config key 'data.path': 'out/corpus/*.jsonl' is inside results 'out': the pipeline would read its own "
        "outputs as documents; keep the corpus outside the results folder"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # nothing written
    # an existing folder named like a glob is that folder (as the readers take it), not its parent
    (tmp_path / "brack[1]").mkdir()
    validate_config(config(tmp_path, results="results", data={"source": "local", "path": "brack[1]"}))


# ---- bounded parsing -------------------------------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    """Billion laughs under data.options (a free-form key): 9^10 strings, ~0.5 KB of YAML."""
    lines = ["data:", "  options:", '    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"    a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_counted_without_expanding_it(tmp_path):
    cfg = {**config(tmp_path), **yaml.safe_load(alias_bomb())}
    start = time.perf_counter()
    assert refused(cfg) == (
        f"config: more than {MAX_CONFIG_VALUES:,} values once its YAML aliases (*name) are expanded "
        "(archbench.config.MAX_CONFIG_VALUES); a config this large is refused before it is copied"
    )
    assert time.perf_counter() - start < 1.0
    # lists of 10, 91, 820 and 7381 values (9 copies of the one before, plus itself) under 3 dicts
    assert check_config_size(yaml.safe_load(alias_bomb(levels=3))) == 3 + 10 + 91 + 820 + 7381


def test_a_config_that_contains_itself_is_refused(tmp_path):
    cfg = config(tmp_path)
    cfg["data"]["options"] = loop = {"x": []}
    loop["x"].append(loop)
    assert refused(cfg) == "config key 'data.options.x[0]': contains itself (a YAML alias inside its own anchor)"


def test_grid_size_is_computed_before_expansion(tmp_path):
    start = time.perf_counter()
    grid = {**TEN, **{k: list(range(1, 11)) for k in ("layers", "batch_size", "log_every_n_steps", "save_top_k")}}
    grid["warmup_steps"] = list(range(10))
    assert refused(config(tmp_path, grid=grid, archs=["retnet"])) == (
        "config key 'grid': 10,000,000,000 grid points (10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10) x "
        "1 architecture(s) x 1 seed(s) = 10,000,000,000 training runs, above the limit of 10,000 "
        "(archbench.config.MAX_RUNS): split the search into several configs"
    )
    assert time.perf_counter() - start < 1.0
    assert check_grid_size({"grid": {"learning_rate": [0.1, 0.2]}, "archs": ["a", "b"], "seeds": [0, 1, 2]}) == 12
    assert check_grid_size(config(tmp_path, grid={**TEN, "learning_rate": [0.1]}, archs=["retnet"])) == MAX_RUNS


# ---- through Snakemake: its own reading of the file is part of the case (tier faults) ---------------


def dry_run(workdir: Path, text: str, *args: str) -> tuple[subprocess.CompletedProcess, float, int]:
    """`snakemake -n` on a config file of `text`: (process, seconds, peak RSS in MB of the child)."""
    workdir.mkdir(exist_ok=True)
    (workdir / "config.yaml").write_text(text)
    cmd = snakemake_command(workdir, "-n", *args, configfile=workdir / "config.yaml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with open(workdir / ".out", "w+") as out, open(workdir / ".err", "w+") as err:
        start = time.perf_counter()
        # Linux carries ru_maxrss over fork + exec: a child forked from this (big) pytest would report
        # pytest's size. A small launcher forks snakemake and reports its own wait4 peak on fd 3.
        rfd, wfd = os.pipe()
        child = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(wfd), *cmd], stdout=out, stderr=err, env=env, pass_fds=(wfd,)
        )
        os.close(wfd)
        with os.fdopen(rfd) as report:
            peak_kb = int(report.read() or 0)
        child.wait()
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        proc = subprocess.CompletedProcess(cmd, child.returncode, out.read(), err.read())
    (workdir / ".out").unlink(), (workdir / ".err").unlink()
    return proc, seconds, peak_kb // 1024


LAUNCH = """
import os, sys
fd, cmd = int(sys.argv[1]), sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.close(fd)
    os.execvp(cmd[0], cmd)
_, status, usage = os.wait4(pid, 0)
os.write(fd, str(usage.ru_maxrss).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def only_the_config_is_left(workdir: Path) -> None:
    assert sorted(p.name for p in workdir.iterdir() if p.name != ".snakemake") == ["config.yaml"]


@pytest.mark.faults
def test_snakemake_refuses_an_alias_bomb_at_parse_time_in_bounded_memory(tmp_path):
    proc, seconds, rss_mb = dry_run(tmp_path / "p", f"results: {tmp_path / 'p' / 'results'}\n" + alias_bomb())
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"archbench: invalid config: config: more than {MAX_CONFIG_VALUES:,} values once its YAML aliases (*name) "
        "are expanded (archbench.config.MAX_CONFIG_VALUES); a config this large is refused before it is copied"
    )
    assert rss_mb < 300, rss_mb  # unbounded: 2.7 GB and a MemoryError in Snakemake's JSON dump of the config
    print(f"alias bomb: {seconds:.1f} s, peak RSS {rss_mb} MB")
    only_the_config_is_left(tmp_path / "p")


@pytest.mark.faults
def test_snakemake_refuses_a_huge_grid_before_expanding_it(tmp_path):
    text = yaml.safe_dump({"results": str(tmp_path / "p" / "results"), "archs": ["retnet", "llama"], "grid": TEN})
    proc, seconds, rss_mb = dry_run(tmp_path / "p", text)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "archbench: invalid config: config key 'grid': 100,000 grid points (10 x 10 x 10 x 10 x 10) x "
        "2 architecture(s) x 1 seed(s) = 200,000 training runs, above the limit of 10,000 "
        "(archbench.config.MAX_RUNS): split the search into several configs"
    )
    assert rss_mb < 300, rss_mb
    print(f"10^5-point grid: {seconds:.1f} s, peak RSS {rss_mb} MB")
    only_the_config_is_left(tmp_path / "p")


@pytest.mark.faults
def test_a_yte_config_is_refused_and_the_docs_say_its_code_ran_first(tmp_path):
    """Snakemake renders a --configfile with YTE while it reads its command line, before the workflow:
    archbench can only refuse the run afterwards (docs/safety.md says so, and this test keeps it true)."""
    marker = tmp_path / "p" / "ran"
    text = f'__use_yte__: true\nresults: ?"results" if __import__("pathlib").Path("{marker}").touch() is None else ""\n'
    proc, _, _ = dry_run(tmp_path / "p", text)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"archbench: invalid config: config file '{tmp_path / 'p' / 'config.yaml'}': '__use_yte__' makes Snakemake "
        "evaluate the Python in it (YTE templates); archbench configs are plain YAML: remove the key (see "
        "docs/safety.md, What runs code)"
    )
    assert marker.exists()  # the expression ran before the Snakefile was read
    assert "before the workflow is read" in (Path(__file__).resolve().parents[1] / "docs/safety.md").read_text()
    assert sorted(p.name for p in (tmp_path / "p").iterdir() if p.name != ".snakemake") == ["config.yaml", "ran"]


@pytest.mark.parametrize(
    ("text", "refuse"),
    [
        ("__use_yte__: true\nresults: x\n", True),
        ("{__use_yte__: true, results: x}\n", True),  # flow style: YTE reads it too
        ('"__use_yte__": yes\n', True),
        ("__use_yte__: false\n", False),  # Snakemake drops the key and renders nothing
        ("# __use_yte__: true\nresults: x\n", False),
        ("data:\n  options: {__use_yte__: true}\n", False),  # YTE looks at the top level only
    ],
)
def test_yte_is_detected_as_snakemake_reads_it(tmp_path, text, refuse):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    if refuse:
        with pytest.raises(ConfigError, match=r"^config file '.*c\.yaml': '__use_yte__' makes Snakemake evaluate"):
            check_plain_yaml([path])
    else:
        check_plain_yaml([path])


def test_the_onerror_hook_imports_nothing_heavy():
    code = "import sys; from archbench.causes import print_causes; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "from archbench.causes import print_causes" in SNAKEFILE.read_text()


@pytest.mark.faults
def test_results_at_the_root_from_the_command_line_stops_before_any_job(tmp_path):
    proc, _, _ = dry_run(tmp_path / "p", "archs: [retnet]\n", "--config", "results=/")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "archbench: invalid config: config key 'results': '/' is the filesystem root; give a folder of its own"
    )
    assert not Path("/data/raw").exists() and not Path("/.archbench.lock").exists()
    only_the_config_is_left(tmp_path / "p")
