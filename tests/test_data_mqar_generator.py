"""The MQAR generator's Zoology options: power-law query gaps, random non-query tokens, hidden answers."""

import numpy as np
import pytest
import torch

from archbench.data import mqar
from archbench.errors import ConfigError

BASE = {"pairs": [4], "queries": None, "vocab_size": 64, "seq_len": 128, "seed": 1}
HALF = 32


def _docs(cfg, n=400):
    return [mqar.document(cfg, 1, i) for i in range(n)]


def test_options_off_reproduce_the_original_generator():
    off = {**BASE, "power_a": 1.0, "random_fillers": False, "answers_in_input": True}
    for (a, pa), (b, pb) in zip(_docs(BASE, 20), _docs(off, 20)):
        assert a.tolist() == b.tolist() and pa.tolist() == pb.tolist()
    assert mqar.generator_settings(BASE)["power_a"] == 1.0


def test_power_law_gaps_put_most_queries_right_after_the_pairs():
    """space = (127 - 8) / 2 = 59 slots; p(g) ~ (g + 1)^-0.99 gives the first 15 slots ~70% of the mass,
    uniform slots 25%."""

    def first_quarter(cfg):
        slots = np.concatenate([(pos - 1 - 8) // 2 for _, pos in _docs(cfg)])
        return float(np.mean(slots < 15))

    assert first_quarter({**BASE, "power_a": 0.01}) > 0.55
    assert 0.15 < first_quarter(BASE) < 0.35


def test_random_fillers_are_value_words_and_keep_the_answer_mask_exact():
    cfg = {**BASE, "power_a": 0.01, "random_fillers": True}
    docs = _docs(cfg, 50)
    for ids, answers in docs:
        rest = np.ones(len(ids), bool)
        rest[:8] = False
        rest[answers] = rest[answers - 1] = False
        assert ids[rest].min() >= mqar.FIRST_WORD + HALF and ids[rest].max() < mqar.FIRST_WORD + 2 * HALF
        assert len(set(ids[rest].tolist())) > 5  # random, not one constant filler
    x = torch.from_numpy(np.stack([d[0] for d in docs]))
    mask = mqar.answer_targets(x, mqar.key_ids(64))
    expected = torch.zeros_like(mask)
    for row, (_, answers) in enumerate(docs):
        expected[row, torch.from_numpy(answers - 1)] = True
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("random_fillers", [False, True])
def test_hide_answers_replaces_exactly_the_answers(random_fillers):
    cfg = {**BASE, "random_fillers": random_fillers}
    ids, answers = mqar.eval_examples(cfg, 1, 4, 32)
    hidden = mqar.hide_answers(ids, answers, cfg, np.random.default_rng(0))
    changed = hidden != ids
    assert changed.sum() >= 0.9 * answers.size  # a random value word may equal the answer by chance
    keep = np.ones_like(ids, bool)
    np.put_along_axis(keep, answers, False, axis=1)
    assert (hidden[keep] == ids[keep]).all()
    filler = np.take_along_axis(hidden, answers, axis=1)
    if random_fillers:
        assert filler.min() >= mqar.FIRST_WORD + HALF
    else:
        assert (filler == mqar.FIRST_WORD - 1).all()


def test_answers_only_in_targets_is_refused_for_training_with_the_key():
    config = {"data": {"mqar": {**BASE, "pairs": [2], "answers_in_input": False}}, "grid": {}}
    with pytest.raises(ConfigError, match="config key 'data.mqar.answers_in_input'"):
        mqar.check_config(config["data"]["mqar"])


def test_schema_defaults_are_zoologys_where_the_budget_allows():
    from archbench.config import validate_config

    grid = {"learning_rate": [1e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [128]}
    cfg = validate_config({"data": {"source": "mqar", "mqar": {"seq_len": 128}}, "grid": grid})
    g = mqar.generator_settings(cfg["data"]["mqar"])
    assert g["power_a"] == 0.01 and g["random_fillers"] is True and g["answers_in_input"] is True
    assert cfg["model"]["match_by"] == "width"
