"""metrics.json carries the provenance block and the training FLOPs per token from the registry."""

import json

from archbench.models.flops import train_flops_per_token
from archbench.provenance import data_fingerprint, file_sha256, settings_hash
from test_training import run


def test_metrics_json_has_provenance_and_flops(tmp_path, tiny_tokens):
    metrics = run(tmp_path, tiny_tokens, "p", arch="llama", max_steps=2)
    on_disk = json.loads((tmp_path / "p/run/metrics.json").read_text())
    block = on_disk["provenance"]
    assert block == json.loads(json.dumps(metrics["provenance"]))
    assert block["settings_hash"] == settings_hash(on_disk["hparams"])
    assert block["settings_hash"] != settings_hash({**on_disk["hparams"], "learning_rate": 1e-3})
    assert block["tokenizer_sha256"] == file_sha256(f"{tiny_tokens['tokenizer']}/tokenizer.json")
    splits = tiny_tokens["tokens"]
    assert block["data_fingerprint"] == data_fingerprint(splits["train"], splits["validation"], splits["test"])
    assert block["precision"] == str(on_disk["hparams"]["precision"]) and block["device"] == "cpu"
    assert block["versions"]["lightning"] and block["started"] <= block["finished"]
    expected = train_flops_per_token("llama", on_disk["model_config"], 32)
    assert on_disk["train_flops_per_token"] == expected
    # llama at width 32, 1 layer, 32 tokens: 6 N + 6 d V + 12 T d L, N from the built model's count
    n, d, vocab = on_disk["params_non_embedding"], 32, on_disk["model_config"]["vocab_size"]
    assert expected == 6 * n + 6 * d * vocab + 12 * 32 * d * 1
