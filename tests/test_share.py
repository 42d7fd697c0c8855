"""Publishing, trackers and job logs without a pipeline run: push refuses offline before uploading,
the push rule's config, a tracker without its extra, log-friendly progress, the card on a tiny model."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archbench.errors import ArchbenchError, ConfigError


def fake_run(tmp_path, card: bool = True):
    model = tmp_path / "runs/retnet/learning_rate~0.01/seed~0/model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    if card:
        (model / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
    return model.parent


def no_upload(monkeypatch):
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("contacted the Hub")

    monkeypatch.setattr(huggingface_hub, "upload_folder", refuse)
    monkeypatch.setattr(huggingface_hub, "create_repo", refuse)


def test_push_offline_fails_with_one_line_before_uploading(tmp_path, monkeypatch):
    from archbench import hub

    no_upload(monkeypatch)
    run = fake_run(tmp_path)
    with pytest.raises(ArchbenchError) as err:
        hub.push_run(str(run), "me/tiny")
    assert str(err.value) == (
        f"cannot push {run} to me/tiny: the Hugging Face Hub is offline here (HF_HUB_OFFLINE is set); "
        "unset it on a machine with network access and log in (`hf auth login` or HF_TOKEN)"
    )


def test_push_cli_offline_prints_one_line(tmp_path):
    run = fake_run(tmp_path)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "archbench.cli", "push", str(run), "--repo-id", "me/tiny"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"archbench: error: cannot push {run} to me/tiny: the Hugging Face Hub is offline here (HF_HUB_OFFLINE "
        "is set); unset it on a machine with network access and log in (`hf auth login` or HF_TOKEN)"
    ]


def test_push_refuses_a_run_without_card_and_a_bad_repo_id(tmp_path, monkeypatch):
    from archbench import hub

    no_upload(monkeypatch)
    with pytest.raises(ArchbenchError, match=r"no model/README.md\); push a folder under results/runs/"):
        hub.push_run(str(fake_run(tmp_path / "a", card=False)), "me/tiny")
    with pytest.raises(ArchbenchError, match="must be NAMESPACE/NAME"):
        hub.push_run(str(fake_run(tmp_path / "b")), "tiny")


def test_push_uploads_the_model_folder(tmp_path, monkeypatch):
    """Online path with the Hub replaced by a recorder (no network here): what upload_folder is given."""
    import huggingface_hub

    from archbench import hub

    calls = []
    monkeypatch.setattr(hub, "offline", lambda: False)
    monkeypatch.setattr(huggingface_hub, "create_repo", lambda *a, **k: calls.append(("create", a, k)))

    class Info:
        commit_url = "https://huggingface.co/me/tiny/commit/abc"

    def upload(**k):  # what the folder holds at upload time (a staging folder, gone afterwards)
        folder = Path(k["folder_path"])
        files = {p.name: p.read_text() for p in folder.iterdir()}
        return calls.append(("upload", k, files)) or Info()

    monkeypatch.setattr(huggingface_hub, "upload_folder", upload)
    run = fake_run(tmp_path)
    local = hub.load_section(f"{run}/model", remote_code=True)
    (run / "model" / "README.md").write_text(f"---\nlicense: mit\n---\n# card\n\n## How to load\n\n{local}\n")
    assert hub.push_run(str(run), "me/tiny") == Info.commit_url
    assert calls[0] == (
        "create",
        ("me/tiny",),
        {"private": True, "exist_ok": True, "token": None, "repo_type": "model"},
    )
    assert calls[1][1]["repo_id"] == "me/tiny" and calls[1][2]["config.json"] == "{}"
    card = calls[1][2]["README.md"]  # the uploaded card loads from the Hub, the one on disk stays local
    assert 'from_pretrained("me/tiny", trust_remote_code=True)' in card and str(run) not in card
    assert "pip install transformers torchscale==0.3.0 einops" in card
    assert str(run) in (run / "model" / "README.md").read_text()


def test_push_repo_ids_and_config_check():
    from archbench import hub

    push = {"enabled": True, "namespace": "lab", "repo_template": "archbench-{arch}-{hash}-seed{seed}"}
    repo = hub.run_repo_id(push, "results/runs/retnet/learning_rate~0.01_embed_dim~32/seed~2")
    assert re.fullmatch(r"lab/archbench-retnet-[0-9a-f]{8}-seed2", repo)
    with pytest.raises(ConfigError, match="hub.push.enabled is true but hub.push.namespace is null"):
        hub.push_settings({"hub": {"push": {"enabled": True, "namespace": None}}})


def test_push_rule_dry_run(tmp_path):
    from workflow_helpers import dry_run_counts, snakemake, tiny_config

    cfg = tiny_config(tmp_path, hub={"push": {"enabled": True, "namespace": "lab"}})
    assert dry_run_counts(tmp_path, configfile=cfg)["push"] == 4  # 2 archs x 2 learning rates
    off = tiny_config(tmp_path)
    assert "push" not in dry_run_counts(tmp_path, configfile=off)
    bad = tiny_config(tmp_path, hub={"push": {"enabled": True}})
    proc = snakemake(tmp_path, "-n", configfile=bad, check=False)
    assert proc.returncode != 0
    assert "hub.push.enabled is true but hub.push.namespace is null" in proc.stdout + proc.stderr


def test_tracker_without_its_extra_is_a_config_error(monkeypatch, tmp_path):
    from archbench.training import loggers

    monkeypatch.setattr(loggers, "_installed", lambda name: name != "wandb")
    with pytest.raises(ConfigError) as err:
        loggers.build_loggers({"loggers": ["csv", "wandb"]}, str(tmp_path))
    assert str(err.value) == (
        'training.loggers names wandb, which is not installed: pip install -e ".[wandb]" -c constraints.txt'
    )


def test_progress_in_a_log_file_is_lines_without_carriage_returns(tmp_path, monkeypatch, caplog):
    from archbench import logs

    log_file = tmp_path / "job.log"
    with open(log_file, "w") as fh:
        monkeypatch.setattr(sys, "stderr", fh)
        logs.configure("tokenize[train/00000]")
        items = list(logs.progress(range(50), "tokenize train", total=100, unit="doc", weight=lambda i: 2, every_s=0))
    logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not isinstance(h, logs._StderrHandler)]
    text = log_file.read_text()
    assert items == list(range(50)) and "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 51  # one per item (every_s=0) and the end
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO tokenize\[train/00000\] archbench: tokenize train: 100/100 doc "
        r"\(100%\), [\d.e+]+ doc/s, done in \d+\.\d s",
        lines[-1],
    )


def test_model_card_of_a_tiny_model(tmp_path):
    from huggingface_hub import ModelCard

    from archbench.models import register
    from archbench.training import modelcard
    from test_eval_fixtures import tiny_model_dir

    register()
    model_dir = tiny_model_dir(tmp_path, "transformer")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    settings = {"learning_rate": 0.01, "batch_size": 8, "seq_len": 64, "betas": [0.9, 0.95]}
    modelcard.finish_model_dir(
        model_dir,
        arch="transformer",
        seed=0,
        settings=settings,
        model=model,
        losses={"validation": 2.0, "test": 2.5},
        tokens={},
        tokenizer_dir=str(model_dir),
    )
    harness = tmp_path / "harness.json"
    harness.write_text(json.dumps({"results": {"archbench_cloze": {"acc": 0.5, "acc_stderr": 0.1, "acc_norm": None}}}))
    modelcard.add_harness_scores(model_dir, harness)
    modelcard.add_harness_scores(model_dir, harness)  # a rerun replaces, never duplicates
    card = ModelCard.load(model_dir / "README.md")
    assert json.loads((model_dir / "config.json").read_text())["bos_token_id"] == 2  # </s>, as the tokenizer
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["bos_token"] == "</s>"
    assert "| `bos_token_id` | `2` |" in card.text
    assert f'from_pretrained("{model_dir}", trust_remote_code=True)' not in card.text  # no run_dir: <run>
    assert 'from_pretrained("<run>/model", trust_remote_code=True)' in card.text and "torchscale" in card.text
    got = [(r.dataset_type, r.dataset_split, r.metric_type, r.metric_value) for r in card.data.eval_results]
    assert got == [
        ("archbench-corpus", "validation", "loss", 2.0),
        ("archbench-corpus", "validation", "perplexity", pytest.approx(math.exp(2.0))),
        ("archbench-corpus", "test", "loss", 2.5),
        ("archbench-corpus", "test", "perplexity", pytest.approx(math.exp(2.5))),
        ("archbench_cloze", "test", "acc", 0.5),
    ]
    assert card.text.count("| archbench_cloze | test | acc | 0.5 | lm-evaluation-harness |") == 1


def test_progress_bar_redraws_become_lines_in_a_log():
    import io

    from archbench.logs import Lines

    out = io.StringIO()
    log = Lines(out)
    for text in ("start\n", "\rbar 0%", "2026 WARNING record\n", "\rbar 50%", "\rbar 100%", "\n", "a", "b\n"):
        log.write(text)
    assert out.getvalue() == "start\nbar 0%\n2026 WARNING record\nbar 50%\nbar 100%\nab\n"
