"""Sharded data stages through the real `snakemake`: one download / split / tokenize job per shard in the DAG,
a directory of C4-layout .json.gz files run by config alone, and a corrupt shard failing with its file named."""

import gzip
import json
import re

import numpy as np

from workflow_helpers import REPO, snakemake, tiny_config

SPLITS = ("train", "validation", "test")


def c4_dir(root, n_files, docs_per_file=1, words=6):
    """Files named and laid out as C4's (gzip JSON lines with text, timestamp, url)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        lines = [
            json.dumps(
                {
                    "text": f"File {i} document {j}. "
                    + " ".join(f"word{(i * 7 + j * 3 + k) % 50}" for k in range(words)),
                    "timestamp": "2019-04-25T12:57:54Z",
                    "url": f"https://example.com/{i}/{j}",
                }
            )
            for j in range(docs_per_file)
        ]
        (root / f"c4-train.{i:05d}-of-01024.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return root


def jobs(text):
    """({rule: count} from the job table, {rule: [wildcards of each job]}) of a `snakemake -n` output."""
    counts, wildcards, rule = {}, {}, None
    for line in text.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m.group(1)
            wildcards.setdefault(rule, [])
        elif (m := re.match(r"^\s+wildcards: (.*)$", line)) and rule:
            wildcards[rule].append(dict(part.split("=", 1) for part in m.group(1).split(", ")))
        elif m := re.match(r"^(\w+)\s+(\d+)$", line.strip()):
            if m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
    return counts, wildcards


def test_dry_run_of_64_shards_has_one_data_job_per_shard(tmp_path):
    corpus = c4_dir(tmp_path / "c4" / "en", 64)
    cfg = tiny_config(
        tmp_path,
        data={"source": "local", "path": str(corpus / "c4-train.*-of-01024.json.gz"), "min_shard_mb": None},
    )
    proc = snakemake(tmp_path, "-n", configfile=cfg)
    counts, wildcards = jobs(proc.stdout + proc.stderr)
    names = [f"{i:05d}-c4-train.{i:05d}-of-01024" for i in range(64)]
    assert {
        r: counts[r]
        for r in ("download", "split_plan", "split", "train_tokenizer", "tokenize", "gather_tokens", "eval_tasks")
    } == {
        "download": 64,
        "split_plan": 1,  # one small job: shard counts, and the fill of every split when the corpus is small
        "split": 64,
        "train_tokenizer": 1,
        "tokenize": 3 * 64,
        "gather_tokens": 3,
        "eval_tasks": 1,
    }
    assert sorted(w["shard"] for w in wildcards["download"]) == names
    assert sorted(w["shard"] for w in wildcards["split"]) == names
    assert sorted((w["split"], w["shard"]) for w in wildcards["tokenize"]) == sorted(
        (s, n) for s in SPLITS for n in names
    )
    assert not (tmp_path / "results").exists()


def test_small_files_are_grouped_and_exact_splits_read_one_plan_file(tmp_path):
    corpus = c4_dir(tmp_path / "c4" / "en", 1100, docs_per_file=4, words=40)  # more files than C4: grouped
    cfg = tiny_config(
        tmp_path, data={"source": "local", "path": str(corpus), "min_shard_mb": 0.1, "max_documents": 5000}
    )
    proc = snakemake(tmp_path, "-n", configfile=cfg)
    counts, wildcards = jobs(proc.stdout + proc.stderr)
    groups, acc = [0], 0  # the rule: consecutive files until a shard holds at least 0.1 MB
    for f in sorted(corpus.iterdir()):
        if acc >= 0.1 * 2**20:
            groups.append(0)
            acc = 0
        groups[-1] += 1
        acc += f.stat().st_size
    n = len(groups)
    assert n >= 2 and counts["download"] == counts["split"] == n and counts["split_plan"] == 1
    first = sorted(w["shard"] for w in wildcards["download"])[0]
    assert first == f"00000-c4-train.00000-of-01024-and-{groups[0] - 1}-more"
    # every split job reads its raw shard and the one plan file (not every shard's stats)
    inputs = re.findall(r"^rule split:\n    input: (.*)$", proc.stdout + proc.stderr, flags=re.M)
    assert len(inputs) == n and all(
        len(i.split(", ")) == 2 and i.endswith("results/data/split_plan.json") for i in inputs
    ), inputs[:2]


def test_c4_layout_directory_runs_by_config_alone(tmp_path):
    corpus = c4_dir(tmp_path / "c4" / "en", 4, docs_per_file=30, words=40)
    cfg = tiny_config(
        tmp_path,
        data={"source": "local", "path": str(corpus), "max_documents": 60, "min_shard_mb": None},
        shuffle=False,
        tokenizer={"vocab_size": 300},
    )
    res = tmp_path / "results"
    snakemake(tmp_path, "--cores", "2", *(str(res / f"tokens/{s}/index.json") for s in SPLITS), configfile=cfg)
    names = [f"{i:05d}-c4-train.{i:05d}-of-01024" for i in range(4)]
    index = {s: json.loads((res / f"tokens/{s}/index.json").read_text()) for s in SPLITS}
    assert [sh["name"] for sh in index["train"]["shards"]] == names
    # contiguous split of the first 60 documents (max_documents) of 4 shards of 30: 48 / 6 / 6
    assert [index[s]["n_documents"] for s in SPLITS] == [48, 6, 6]
    assert [sh["n_documents"] for sh in index["train"]["shards"]] == [30, 18, 0, 0]
    for s in SPLITS:
        total = sum(np.fromfile(res / f"tokens/{s}/{sh['bin']}", dtype="<u2").size for sh in index[s]["shards"])
        assert total == index[s]["n_tokens"] > 0
    benchmark = (res / f"benchmarks/download/{names[0]}.tsv").read_text().splitlines()
    assert benchmark[0].split("\t")[:3] == ["s", "h:m:s", "max_rss"]
    # nothing left to do on a second run
    proc = snakemake(tmp_path, "-n", *(str(res / f"tokens/{s}/index.json") for s in SPLITS), configfile=cfg)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_corrupt_shard_fails_its_job_with_the_file_named(tmp_path):
    corpus = c4_dir(tmp_path / "c4", 2, docs_per_file=200, words=30)
    bad = corpus / "c4-train.00001-of-01024.json.gz"
    bad.write_bytes(bad.read_bytes()[:-200])  # truncated, as by an interrupted download
    cfg = tiny_config(tmp_path, data={"source": "local", "path": str(corpus), "min_shard_mb": None})
    res = tmp_path / "results"
    proc = snakemake(
        tmp_path,
        "--cores",
        "1",
        "--keep-going",
        str(res / "data/raw/00000-c4-train.00000-of-01024.json"),
        str(res / "data/raw/00001-c4-train.00001-of-01024.json"),
        configfile=cfg,
        check=False,
    )
    assert proc.returncode != 0
    log = (res / "logs/download/00001-c4-train.00001-of-01024.log").read_text()
    assert re.search(r"DataError: .*c4-train\.00001-of-01024\.json\.gz: corrupt or truncated data after line \d+", log)
    assert (res / "data/raw/00000-c4-train.00000-of-01024.json").exists()  # the good shard finished
    assert sorted(p.name for p in (res / "data/raw").iterdir()) == [
        "00000-c4-train.00000-of-01024.json",
        "00000-c4-train.00000-of-01024.parquet",
    ]  # nothing half-written


def test_c4_local_preset_validates(tmp_path):
    corpus = c4_dir(tmp_path / "c4" / "en", 3)
    override = tmp_path / "path.yaml"
    override.write_text(f"data: {{path: '{corpus}/c4-train.*-of-01024.json.gz'}}\n")
    base = tiny_config(tmp_path)
    proc = snakemake(
        tmp_path, "-n", "--configfile", str(base), str(REPO / "config/presets/c4-local.yaml"), str(override)
    )
    counts, _ = jobs(proc.stdout + proc.stderr)
    assert (counts["download"], counts["split"], counts["tokenize"]) == (3, 3, 9)
