"""One tiny run through the real `snakemake` (train + harness, with all four trackers), then what a
researcher does with it: the README's stock `lm_eval` line and its "load a saved model" snippet, run in
processes that cannot import archbench; the model card through huggingface_hub's parser; the MLflow
store and the W&B offline run; job logs without carriage returns."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workflow_helpers import REPO, snakemake, tiny_config

pytestmark = pytest.mark.slow  # one training run + two lm-eval runs: about 3 minutes on 2 busy cores

POINT = "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~128"
RUN = f"results/runs/retnet/{POINT}/seed~0"
README = (REPO / "README.md").read_text()

pytest.importorskip("mlflow", reason="extra mlflow not installed (pip install -e '.[mlflow]')")
pytest.importorskip("wandb", reason="extra wandb not installed (pip install -e '.[wandb]')")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("share_run")
    cfg = tiny_config(
        work,
        archs=["retnet"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [128]},
        eval={"limit": 40},  # the README line's --limit (the default run's)
        training__loggers=["tensorboard", "csv", "mlflow", "wandb"],
    )
    env_extra = {"WANDB_SILENT": "true"}
    os.environ.update(env_extra)
    snakemake(work, "--cores", "2", f"{work}/results/eval/retnet/{POINT}/seed~0/harness.json", configfile=cfg)
    return work


def poisoned_env(tmp: Path) -> dict:
    """An environment where `import archbench` fails: the stock tools must not need it."""
    poison = tmp / "poison" / "archbench"
    poison.mkdir(parents=True, exist_ok=True)
    (poison / "__init__.py").write_text('raise ImportError("the stock tool imported archbench")\n')
    return {**os.environ, "PYTHONPATH": str(poison.parent), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def stock_line() -> str:
    lines = [line for line in README.splitlines() if line.startswith("lm_eval --model hf")]
    assert len(lines) == 1, lines
    assert set(re.findall(r"<[^>]+>", lines[0])) == {"<run>"}  # the only placeholder
    return lines[0]


def test_stock_lm_eval_line_reproduces_harness_json(run, tmp_path):
    line = stock_line().replace("<run>", RUN)
    proc = subprocess.run(line, shell=True, cwd=run, env=poisoned_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (out,) = (run / "results/eval/stock").rglob("results_*.json")
    stock = json.loads(out.read_text())["results"]
    ours = json.loads((run / f"results/eval/retnet/{POINT}/seed~0/harness.json").read_text())["results"]
    compared = 0
    for task, metrics in ours.items():
        for metric, value in metrics.items():
            if metric.endswith("_stderr") or value is None:  # stderr: bootstrap iterations differ
                continue
            assert stock[task][f"{metric},none"] == pytest.approx(value, abs=1e-6, rel=0), (task, metric)
            compared += 1
    assert compared >= 7  # word/byte perplexity, bits per byte, acc, acc_norm, perplexity, acc
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(run / RUN / "model").bos_token == "</s>"


def test_stock_line_differs_with_the_untrained_bos(run, tmp_path):
    """Control: with the tokenizer's original BOS `<s>` the stock perplexities change (the fix matters)."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(run / RUN / "model", model)
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg["bos_token"] = "<s>"
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    line = stock_line().replace("<run>/model", str(model)).replace("results/eval/stock", str(tmp_path / "out"))
    proc = subprocess.run(line, shell=True, cwd=run, env=poisoned_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (out,) = (tmp_path / "out").rglob("results_*.json")
    stock = json.loads(out.read_text())["results"]
    ours = json.loads((run / f"results/eval/retnet/{POINT}/seed~0/harness.json").read_text())["results"]
    assert abs(stock["archbench_ppl"]["bits_per_byte,none"] - ours["archbench_ppl"]["bits_per_byte"]) > 1e-4


def test_readme_load_snippet_runs_as_written(run, tmp_path):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    assert "<point>" in block
    code = block.replace("<point>", POINT) + "print(type(model).__name__, len(tokenizer))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=run,
        env=poisoned_env(tmp_path),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert "Do you wish to run the custom code?" not in proc.stdout
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.splitlines()[-1].split()[0] == "RetNetForCausalLM"


def test_model_card_metadata_parses_with_huggingface_hub(run):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    path = run / RUN / "model/README.md"
    card = ModelCard.load(path)
    metrics = json.loads((run / RUN / "metrics.json").read_text())
    harness = json.loads((run / f"results/eval/retnet/{POINT}/seed~0/harness.json").read_text())["results"]
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == card.data.model_name and name.startswith("archbench-retnet")
    got = {(r.dataset_type, r.dataset_split, r.metric_type): r.metric_value for r in results}
    assert got[("archbench-corpus", "validation", "loss")] == pytest.approx(metrics["val_loss"], abs=1e-9)
    assert got[("archbench-corpus", "test", "loss")] == pytest.approx(metrics["test_loss"], abs=1e-9)
    assert got[("archbench-corpus", "test", "perplexity")] == pytest.approx(math.exp(metrics["test_loss"]))
    for task, scores in harness.items():
        for metric, value in scores.items():
            if value is not None and not metric.endswith("_stderr"):
                assert got[(task, "test", metric)] == pytest.approx(value, abs=1e-12), (task, metric)
    assert card.data.library_name == "transformers" and "retnet" in card.data.tags
    text = path.read_text()
    for needle in (
        f"{metrics['params_total']:,} in total",
        "## Training recipe",
        '"settings_hash"',
        "trust_remote_code=True",
        stock_line().replace("<run>", RUN),
    ):
        assert needle in text, needle


def test_mlflow_local_store_holds_params_and_metric_history(run, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    client = MlflowClient(tracking_uri=f"file:{run / RUN / 'logs/mlflow'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "archbench"]
    (mlrun,) = client.search_runs([exp.experiment_id])
    assert mlrun.data.params["run/learning_rate"] == "0.01" and mlrun.data.params["run/seq_len"] == "128"
    history = client.get_metric_history(mlrun.info.run_id, "train_loss")
    csv = pd.read_csv(run / RUN / "logs/csv/metrics.csv").dropna(subset=["train_loss"])
    assert [h.step for h in history] == csv["step"].tolist() == [4, 9, 14, 19, 24, 29]
    assert [h.value for h in history] == pytest.approx(csv["train_loss"].tolist(), rel=1e-6)
    assert len(client.get_metric_history(mlrun.info.run_id, "val_loss")) >= 3


def wandb_records(path: Path):
    """The protobuf records of a W&B run file (`run-*.wandb`): a ":W&B" header, then LevelDB-log framing
    (32 KiB blocks; records as 7-byte header + payload, split FIRST / MIDDLE / LAST across blocks),
    which `wandb sync` uploads. wandb 0.31 ships no Python reader, so this is the format, read here."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7])[0] == b":W&B"
    pos, payload = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        payload = chunk if kind in (1, 2) else payload + chunk  # FULL / FIRST start a record
        if kind in (1, 4):  # FULL / LAST end it
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            yield record


def test_wandb_offline_run_folder_holds_the_history(run):
    (folder,) = (run / RUN / "logs/wandb").glob("offline-run-*")
    (data,) = folder.glob("run-*.wandb")
    rows = [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in wandb_records(data)
        if r.WhichOneof("record_type") == "history"
    ]
    train = [(r["trainer/global_step"], r["train_loss"]) for r in rows if "train_loss" in r]
    csv = pd.read_csv(run / RUN / "logs/csv/metrics.csv").dropna(subset=["train_loss"])
    assert [step for step, _ in train] == csv["step"].tolist() == [4, 9, 14, 19, 24, 29]
    assert [loss for _, loss in train] == pytest.approx(csv["train_loss"].tolist(), rel=1e-6)
    config = [r for r in wandb_records(data) if r.WhichOneof("record_type") == "config"]
    settings = [json.loads(u.value_json) for c in config for u in c.config.update if u.key == "run"]
    assert settings and settings[0]["seq_len"] == 128 and settings[0]["learning_rate"] == 0.01


def test_job_logs_are_timestamped_with_progress_and_no_carriage_returns(run):
    logs = {
        p.relative_to(run / "results/logs").as_posix(): p.read_text() for p in (run / "results/logs").rglob("*.log")
    }
    rules = {k.removesuffix(".log").split("/")[0] for k in logs}
    assert {"download", "split", "train_tokenizer", "tokenize", "train", "eval"} <= rules
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR) \w+")
    for name, text in logs.items():
        assert "\r" not in text, name
        assert any(stamp.match(line) for line in text.splitlines()), name
    train = next(t for n, t in logs.items() if n.startswith("train/"))
    assert re.search(r"INFO train\[arch=retnet .*seed=0\] .*step 29/30 \(97%\) lr=.* train_loss=.*, ETA ", train)
    assert re.search(r"INFO train\[.*\] archbench.job.train: start: inputs \d+ files", train)
    assert "end: " in train and "metrics.json" in train
    for name, text in logs.items():  # no progress bars, none of the noise archbench.logs filters
        assert not re.search(r"\d+%\|| it/s\]", text), name
        for noise in ("torch.jit", "litlogger", "Multiple instances of codecarbon", "fatal: not a git"):
            assert noise not in text, (name, noise)
        assert text.count("Seed set to 0") <= 1, name
    tokenize = logs["tokenize/train/00000-kjv.log"]
    assert re.search(r"INFO tokenize\[.*\] .*start: inputs 2 files", tokenize)
    assert re.search(r"tokenize \S+: \d+/\d+ doc \(100%\).*done in", tokenize)
    tok = next(t for n, t in logs.items() if n.startswith("train_tokenizer"))
    assert "BPE: reading documents" in tok
