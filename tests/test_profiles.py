"""The Slurm profile: installing it under a bare name, and what it asks Snakemake for."""

import subprocess
import sys

import pytest
import yaml

from archbench.profiles import ProfileInstallError, install_profile, user_profile_dir
from workflow_helpers import REPO, SNAKEFILE

PROFILE = REPO / "profiles" / "slurm"


@pytest.fixture
def home(tmp_path, monkeypatch):
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
    for rule in ("harness", "latency"):
        assert profile["set-resources"][rule]["gpu"] == 1 and "cpus_per_gpu" in profile["set-resources"][rule]
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
