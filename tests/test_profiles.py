"""The Slurm profile: installing it under a bare name, and what it asks Snakemake for."""

import subprocess
import sys

import pytest
import yaml

from archbench.profiles import ProfileInstallError, install_profile, user_profile_dir
from workflow_helpers import REPO, SNAKEFILE, tiny_config

PROFILE = REPO / "profiles" / "slurm"
MODEL_RULES = ("train", "harness", "latency", "generate", "length", "throughput", "recall", "retrieval")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the profiles are the checkout's, found from where the command runs
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return tmp_path / "home"


def test_install_links_into_the_user_config_dir_and_is_idempotent(home):
    dest = install_profile("slurm")
    assert dest == home / ".config/snakemake/slurm" and dest.is_symlink()
    assert dest.resolve() == PROFILE.resolve()
    assert install_profile("slurm") == dest  # second call: nothing to do


def test_install_follows_xdg_config_home(home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_profile_dir() == tmp_path / "xdg/snakemake"
    assert install_profile().resolve() == PROFILE.resolve()


def test_install_refuses_to_replace_another_profile(home, tmp_path):
    other = home / ".config/snakemake/slurm"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("executor: slurm\n")
    with pytest.raises(ProfileInstallError, match="already exists"):
        install_profile("slurm")
    assert (other / "config.yaml").read_text() == "executor: slurm\n"  # untouched
    link = tmp_path / "elsewhere"
    link.symlink_to(tmp_path)
    with pytest.raises(ProfileInstallError, match="not a link to"):
        install_profile("slurm", dest=link)


def test_install_names_the_available_profiles_for_an_unknown_name(home):
    with pytest.raises(ProfileInstallError, match="slurm"):
        install_profile("no-such-profile")


def test_install_reads_the_profiles_of_the_current_directory_not_of_the_package(home, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ProfileInstallError, match=f"no profile 'slurm' in {elsewhere / 'profiles'} .*repository root"):
        install_profile("slurm")
    assert install_profile("slurm", source=PROFILE).resolve() == PROFILE.resolve()


def test_snakemake_resolves_the_installed_profile_by_name(home, tmp_path):
    install_profile("slurm")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(SNAKEFILE),
            "-d",
            str(tmp_path / "w"),
            "--profile",
            "slurm",
            "--executor",
            "dryrun",
            "-n",
            "-q",
            "rules",
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "HOME": str(home)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train" in proc.stdout


def test_profile_has_the_required_keys_and_no_site_settings():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    for key in ("jobs", "latency-wait", "retries", "rerun-incomplete", "keep-going", "slurm-logdir"):
        assert key in profile, key
    text = (PROFILE / "config.yaml").read_text()
    for rule, res in profile["set-resources"].items():
        assert "slurm_partition" not in res and "slurm_account" not in res, rule
        assert "attempt" in str(res["mem_mb"]) and "attempt" in str(res["runtime"]), rule
    for rule in MODEL_RULES:
        # GPUs follow config (the rules set them); the profile gives CPUs per GPU, memory and time
        assert "gpu" not in profile["set-resources"][rule] and "cpus_per_gpu" in profile["set-resources"][rule], rule
    assert "cpus_per_gpu" in profile["set-resources"]["train"]
    assert "slurm_partition=" in text and "slurm_account=" in text  # documented, not set
    assert "Several nodes" in text  # the commented multi-node variant


def test_cli_install_profile_links_and_reports_conflicts(home):
    import os
    import shutil

    exe = shutil.which("archbench") or pytest.skip("archbench entry point not installed")
    env = {**os.environ, "HOME": str(home)}
    ok = subprocess.run([exe, "install-profile", "slurm"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (home / ".config/snakemake/slurm").resolve() == PROFILE.resolve()
    bad = subprocess.run([exe, "install-profile", "nope"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("archbench: error: no profile 'nope'")
    assert "Traceback" not in bad.stderr


def _readme_table() -> dict[str, list[str]]:
    """{rule: [CPUs, memory, time, GPUs]} of the README's Slurm resource table."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| rule | CPUs |") :].split("\n\n")[0].splitlines()[2:]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in row.strip("|").split("|")] for row in table)}


def test_readme_resource_table_is_the_profile():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    threads, resources = profile["set-threads"], profile["set-resources"]
    table = _readme_table()
    assert set(table) == set(resources), "one README row per rule of the profile"
    for rule, (cpus, mem, time, gpus) in table.items():
        res = resources[rule]
        expected_cpus = f"{res['cpus_per_gpu']} per GPU" if "cpus_per_gpu" in res else str(threads[rule])
        assert cpus == expected_cpus, rule
        assert res["mem_mb"] == f"attempt * {mem}" and res["runtime"] == f"attempt * {time}", rule
        assert (gpus != "–") == (rule in MODEL_RULES), rule


def _dry_run_resources(tmp_path, *configfiles) -> dict[str, str]:
    """{rule: its resources line} of a dry run under the Slurm profile (the dryrun executor: no cluster)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path / "w"), "--profile", str(PROFILE)]
        + ["--executor", "dryrun", "-n", "--configfile", *map(str, configfiles)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found, rule = {}, None
    for line in proc.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:"):
            found.setdefault(rule, line)
    return found


def test_paper_grid_gives_every_model_running_rule_a_gpu(tmp_path):
    """training.accelerator gpu (eval.device auto): train and every evaluation job ask for one GPU,
    with the profile's CPUs per GPU, memory and time; no data or report job asks for one."""
    found = _dry_run_resources(tmp_path, REPO / "config/presets/paper-grid.yaml")
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"]
    model_rules = {r for r in found if r in MODEL_RULES}
    assert model_rules == set(MODEL_RULES) - {"recall", "retrieval"}  # recall, retrieval: MQAR data only
    for rule in model_rules:
        assert "gpu=1," in found[rule] and f"cpus_per_gpu={profile[rule]['cpus_per_gpu']}" in found[rule], found[rule]
        assert f"mem_mb={profile[rule]['mem_mb'].split()[-1]}," in found[rule], found[rule]
    for rule in set(found) - model_rules:
        assert "gpu=" not in found[rule].replace("gpu=0", ""), found[rule]


def test_cpu_config_asks_for_no_gpu(tmp_path):
    cfg = tiny_config(
        tmp_path,
        data={"source": "mqar"},
        retrieval={"enabled": True},
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [128]},
    )
    found = _dry_run_resources(tmp_path, cfg)
    assert {r for r in found if r in MODEL_RULES} == set(MODEL_RULES)
    assert all("gpu=1" not in line for line in found.values())
