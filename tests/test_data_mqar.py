"""MQAR: deterministic documents, answer positions that are exactly the queried keys' values, a
word-level tokenizer that reproduces the ids, config errors naming the key, and a tiny Transformer
that learns a 4-pair task well above chance."""

import re

import numpy as np
import pandas as pd
import pytest
import torch

from archbench.data import mqar
from archbench.errors import ConfigError

CFG = {
    "pairs": [2, 4, 8],
    "queries": None,
    "vocab_size": 64,
    "seq_len": 40,
    "documents": 30,
    "eval_examples": 16,
    "eval_pairs": [],
    "seed": 3,
}


def test_documents_are_deterministic_and_differ_by_index():
    a, pa = mqar.document(CFG, 7, 5)
    b, pb = mqar.document(CFG, 7, 5)
    assert a.tolist() == b.tolist() and pa.tolist() == pb.tolist() and len(a) == CFG["seq_len"] - 1
    assert mqar.document(CFG, 7, 6)[0].tolist() != a.tolist()
    assert mqar.document(CFG, 8, 5)[0].tolist() != a.tolist()
    ids, _ = mqar.eval_examples(CFG, 7, 4, 3)
    assert ids.tolist() == mqar.eval_examples(CFG, 7, 4, 3)[0].tolist()


@pytest.mark.parametrize("pairs", [1, 4, 8])
def test_answer_positions_are_exactly_the_queried_values(pairs):
    rng = np.random.default_rng(pairs)
    for _ in range(50):
        ids, answers = mqar.example(rng, pairs, pairs, 39, 64)
        table = dict(zip(ids[0 : 2 * pairs : 2].tolist(), ids[1 : 2 * pairs : 2].tolist()))
        assert len(table) == pairs and len(set(table.values())) == pairs
        assert len(answers) == pairs and len(set(answers.tolist())) == pairs
        for p in answers:
            assert p >= 2 * pairs + 1 and table[int(ids[p - 1])] == ids[p]  # key, then its value
        # nothing but fillers outside the pairs and the queries
        rest = np.ones(len(ids), bool)
        rest[: 2 * pairs] = False
        rest[answers] = rest[answers - 1] = False
        assert set(ids[rest].tolist()) <= {4}


def test_answer_targets_mark_exactly_the_positions_before_the_answers():
    """The training loss mask (data.mqar.loss: answers) is computed from the ids alone; it must pick
    exactly the generator's answer positions (shifted by one: position t predicts token t + 1)."""
    docs = [mqar.document(CFG, 5, i) for i in range(24)]
    x = torch.from_numpy(np.stack([d[0] for d in docs]))
    mask = mqar.answer_targets(x, mqar.key_ids(CFG["vocab_size"]))
    for row, (_, answers) in zip(mask, docs):
        assert torch.nonzero(row).flatten().tolist() == (answers - 1).tolist()


def test_mqar_runs_train_on_answers_unless_loss_all():
    from archbench.config import run_settings
    from archbench.training.module import CausalLMModule

    config = _config()
    config["data"]["source"] = "mqar"
    point = {"learning_rate": 1.0e-3, "embed_dim": 32, "ffn_dim": 64, "heads": 2, "seq_len": 40}
    assert run_settings(config, point)["answer_keys"] == [5, 37]
    config["data"]["mqar"]["loss"] = "all"
    assert "answer_keys" not in run_settings(config, point)

    # the module's loss over a batch equals cross-entropy over the answer positions alone
    kwargs = dict(vocab_size=5 + 64, embed_dim=32, ffn_dim=64, heads=2, layers=1, max_seq_len=40)
    torch.manual_seed(0)
    module = CausalLMModule("transformer", kwargs, 1.0e-3, answer_keys=[5, 37])
    docs = [mqar.document(CFG, 5, i) for i in range(4)]
    batch = torch.from_numpy(np.stack([np.append(d[0], 2) for d in docs]))  # + </s>: seq_len + 1 tokens
    logits = module(batch[:, :-1])
    picked = [(r, int(p) - 1) for r, (_, answers) in enumerate(docs) for p in answers]
    direct = torch.stack([torch.nn.functional.cross_entropy(logits[r, t], batch[r, t + 1]) for r, t in picked])
    assert module._loss(batch).item() == pytest.approx(direct.mean().item(), rel=1e-5)
    plain = CausalLMModule("transformer", kwargs, 1.0e-3)
    plain.load_state_dict(module.state_dict())
    assert plain._loss(batch).item() != pytest.approx(module._loss(batch).item(), rel=1e-3)


def test_download_and_word_level_tokenizer_reproduce_the_ids(tmp_path):
    from transformers import AutoTokenizer

    stats = mqar.download({"mqar": CFG}, str(tmp_path / "raw.parquet"), str(tmp_path / "stats.json"))
    docs = pd.read_parquet(tmp_path / "raw.parquet")["text"].tolist()
    assert stats["n_documents"] == len(docs) == 30 and stats["mqar"]["seed"] == 3
    mqar.write_tokenizer(str(tmp_path / "tok"), CFG)
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert len(tok) == 4 + 1 + 64
    for i in (0, 1, 2, 29):
        ids, _ = mqar.document(CFG, 3, i)
        assert tok(docs[i], add_special_tokens=False)["input_ids"] == ids.tolist()


def _config(**mqar_over):
    return {
        "data": {"mqar": {**CFG, **mqar_over}},
        "grid": {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [40]},
        "model": {},
        "training": {},
    }


@pytest.mark.parametrize(
    "over,message",
    [
        (
            {"pairs": [40]},
            "config key 'data.mqar.pairs': 40 pairs need 40 distinct keys, but data.mqar.vocab_size 64 gives 32",
        ),
        (
            {"pairs": [2, 10]},
            "config key 'data.mqar.pairs': 10 pairs + 10 queries need 40 tokens, but data.mqar.seq_len 40 leaves 39",
        ),
        ({"eval_pairs": [12]}, "config key 'data.mqar.eval_pairs': 12 pairs + 12 queries need 48 tokens"),
        ({"seq_len": 64}, "training seq_len must equal data.mqar.seq_len (64)"),
    ],
)
def test_config_errors_name_the_key(over, message):
    from archbench.config import grid_points, run_settings
    from archbench.data.sources import get_source

    config = _config(**over)
    settings = [run_settings(config, p, with_source=False) for p in grid_points(config)]
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_source("mqar").check_config(config["data"], settings)


@pytest.mark.slow
def test_a_tiny_transformer_learns_four_pairs_above_chance(one_thread):
    """A 2-layer Transformer trained with the plain LM loss on 4-pair documents (the pipeline's objective):
    300 steps (~40 s on a loaded 2-core machine) reach 0.22 recall, 3.5x the 1/16 chance of a value word."""
    from archbench.evaluation.recall import recall_accuracy
    from archbench.models import build_model

    cfg = {**CFG, "pairs": [4], "vocab_size": 32, "seq_len": 24}
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=5 + 32, embed_dim=64, ffn_dim=128, heads=2, layers=2, max_seq_len=24)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    docs = np.stack([mqar.document(cfg, 0, i)[0] for i in range(4096)])
    rng = np.random.default_rng(0)
    for _step in range(STEPS):
        batch = torch.from_numpy(docs[rng.integers(0, len(docs), 64)])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ids, answers = mqar.eval_examples(cfg, 0, 4, 128)
    correct, total = recall_accuracy(model, ids, answers, 64, "cpu")
    chance = 1 / 16
    assert correct / total > 2 * chance, correct / total


STEPS = 300


def test_the_data_stages_dispatch_to_mqar_and_pack_documents_into_aligned_windows(tmp_path):
    """download -> split -> train_tokenizer -> tokenize through the stage functions' issue-15 hooks: every
    document is seq_len tokens with its </s>, so training windows of seq_len start at a document."""
    from archbench.data.download import download_shard
    from archbench.data.sources import plan_shards
    from archbench.data.split import split_shard
    from archbench.data.tokenize import tokenize_split
    from archbench.data.tokenizer import EOS_ID, train_tokenizer

    data = {"source": "mqar", "mqar": CFG}
    (shard,) = plan_shards(data).values()  # one generated shard
    download_shard(shard, data, str(tmp_path / "raw.parquet"), str(tmp_path / "raw.json"))
    splits = {s: str(tmp_path / "split" / s / "00000-mqar.parquet") for s in ("train", "validation", "test")}
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    split_shard(str(tmp_path / "raw.parquet"), splits, ratios, shuffle=False, seed=0, total=CFG["documents"])
    stats = train_tokenizer(splits["train"], str(tmp_path / "tok"), vocab_size=4096, data=data)
    assert stats["word_level"] and stats["vocab_size"] == 69
    tokenize_split(splits["train"], str(tmp_path / "tok"), str(tmp_path / "train.bin"), str(tmp_path / "train.json"))
    ids = np.fromfile(tmp_path / "train.bin", dtype="<u2").reshape(-1, CFG["seq_len"])
    assert (ids[:, -1] == EOS_ID).all() and len(ids) >= 20
    docs = {tuple(mqar.document(CFG, 3, i)[0].tolist()) for i in range(CFG["documents"])}
    assert all(tuple(row[:-1].tolist()) in docs for row in ids)
