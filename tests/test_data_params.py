"""Each data rule's params hold only what it reads: changing ``data.max_documents`` (applied by split)
reruns split and what follows, never a download (checked by Snakemake's own params trigger).

(``snakemake --list-changes params`` is not used: Snakemake 9.27 lists one output of every job there,
changed or not.)"""

import re

import pytest
import yaml

from workflow_helpers import snakemake, tiny_config


@pytest.mark.slow  # ~60 s: runs the data stages once
def test_changing_max_documents_reruns_split_and_after_but_no_download(tmp_path):
    cfg = tiny_config(tmp_path, data={"source": "default", "max_documents": 60})
    target = str(tmp_path / "results/tokens/train/index.json")
    snakemake(tmp_path, "--cores", "1", target, configfile=cfg)
    config = yaml.safe_load(cfg.read_text())
    config["data"]["max_documents"] = 50
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    out = snakemake(tmp_path, "--dry-run", target, "--rerun-triggers", "params", configfile=cfg).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    reason: (.*)$", out, flags=re.M)
    assert [rule for rule, _ in jobs] == ["split", "train_tokenizer", "tokenize", "gather_tokens"], out
    assert [rule for rule, why in jobs if why.startswith("Params have changed")] == ["split"]
    assert "before: 60 now: 50" in jobs[0][1]
