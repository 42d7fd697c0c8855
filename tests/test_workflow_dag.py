"""The DAG through the real `snakemake`: job counts of dry runs, lint, and config errors at parse time."""

from workflow_helpers import REPO, dry_run_counts, snakemake, tiny_config


def test_default_dry_run_has_every_stage_with_the_right_counts(tmp_path):
    counts = dry_run_counts(tmp_path)
    per_run = dict.fromkeys(
        ["train", "harness", "generate", "length"], 6
    )  # retnet, transformer, llama at two learning rates
    per_run.update(latency=3, throughput=3)  # timed once per architecture x shape, not per learning rate
    assert counts == {
        "download": 1,
        "split": 1,
        "train_tokenizer": 1,
        "tokenize": 3,
        "gather_tokens": 3,
        "eval_tasks": 1,
        **per_run,
        "collect": 1,
        "plots": 1,
        "plot_latency": 1,
        "questions": 1,
        "summary": 1,
        "all": 1,
    }


def test_grid_archs_and_seeds_multiply_train_jobs(tmp_path):
    cfg = tiny_config(
        tmp_path,
        archs=["retnet", "transformer", "longnet"],
        seeds=[0, 1],
        grid={
            "learning_rate": [1.0e-3, 2.0e-3, 3.0e-3],
            "embed_dim": [32, 64],
            "ffn_dim": [64],
            "heads": [2],
            "seq_len": [32],
        },
    )
    counts = dry_run_counts(tmp_path, configfile=cfg)
    assert counts["train"] == counts["harness"] == counts["generate"] == 3 * 2 * 3 * 2
    assert counts["latency"] == 3 * 2  # once per architecture x shape (embed_dim), not per learning rate or seed
    assert counts["tokenize"] == 3 and counts["collect"] == counts["summary"] == 1


def test_a_single_artifact_can_be_targeted(tmp_path):
    cfg = tiny_config(tmp_path)
    counts = dry_run_counts(tmp_path, str(tmp_path / "results/tokens/validation/index.json"), configfile=cfg)
    assert counts == {"download": 1, "split": 1, "train_tokenizer": 1, "tokenize": 1, "gather_tokens": 1}


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_bad_config_fails_at_parse_time_with_the_key_and_no_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("grid:\n  learning_rate: [1e-3]\n")
    proc = snakemake(tmp_path, "-n", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert "config key 'grid.learning_rate[0]'" in proc.stderr
    assert "write it with a dot" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()
    assert (REPO / "Snakefile").exists()


def test_a_local_corpus_needs_only_config(tmp_path):
    import pandas as pd

    corpus = tmp_path / "my corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("First document.\n")
    (corpus / "b.txt").write_text("   \n")  # whitespace only: dropped and counted
    (corpus / "c.jsonl").write_text('{"body": "Second document."}\n{"body": "Third."}\n')
    cfg = tiny_config(tmp_path, data={"source": "local", "path": str(corpus), "text_column": "body"})
    # .txt files are whole documents; the jsonl's field is named by data.text_column
    shards = ["00000-a", "00001-b", "00002-c"]  # one per file, in file order
    snakemake(
        tmp_path, "--cores", "1", *(str(tmp_path / f"results/data/raw/{s}.parquet") for s in shards), configfile=cfg
    )
    texts = [t.strip() for s in shards for t in pd.read_parquet(tmp_path / f"results/data/raw/{s}.parquet")["text"]]
    assert texts == ["First document.", "Second document.", "Third."]
    stats = (tmp_path / "results/data/raw/00001-b.json").read_text()
    assert '"n_dropped_empty": 1' in stats
