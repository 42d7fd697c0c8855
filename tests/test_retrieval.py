"""Long-context retrieval (rule retrieval): the phonebook / passkey / copy generators on the MQAR vocabulary
(exact layouts, lengths, seeded determinism), exact-match scoring (an oracle scores 100%, a constant model
chance), retrieval.json of tiny models (state bytes per length, skipped lengths), the report's table and
sentence from constructed tables (the interval wording), and the config keys."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from archbench.config import validate_config
from archbench.data import mqar
from archbench.data import retrieval as rt
from archbench.errors import ConfigError
from archbench.provenance import settings_hash
from test_eval_fixtures import mqar_model_dir

VOCAB = 32  # 16 keys, 16 values
HALF = VOCAB // 2
KEYS = range(mqar.FIRST_WORD, mqar.FIRST_WORD + HALF)
VALUES = range(mqar.FIRST_WORD + HALF, mqar.FIRST_WORD + VOCAB)
FILL = mqar.FIRST_WORD - 1  # "_"


# ---- generators


@pytest.mark.parametrize("task", rt.TASKS)
@pytest.mark.parametrize("length", [5, 16, 31, 64, 100])
@pytest.mark.parametrize("random_fillers", [False, True])
def test_examples_are_exactly_length_tokens_of_the_mqar_vocabulary(task, length, random_fillers):
    ids, answers = rt.examples(task, length, 6, VOCAB, random_fillers, seed=3)
    assert ids.shape == (6, length) and ids.dtype == np.int64
    assert ids.min() >= mqar.FIRST_WORD - 1 and ids.max() < mqar.FIRST_WORD + VOCAB
    assert answers.shape == (6, 1 if task != "copy" else rt.pairs_in("copy", length, VOCAB))
    for row, ans in zip(ids, answers):
        assert all(row[a] in VALUES and row[a - 1] in KEYS for a in ans)  # every answer is a key's value
        keys = row[np.isin(row, list(KEYS))]
        # each key of the example names one value: wherever it occurs, the same value follows it
        for k in set(keys):
            assert len({row[i + 1] for i in np.flatnonzero(row == k)}) == 1
        if not random_fillers:
            assert set(row) - set(KEYS) - set(VALUES) <= {FILL}


def test_phonebook_fills_the_context_with_pairs_and_queries_one_at_the_end():
    ids, answers = rt.examples("phonebook", 20, 50, VOCAB, random_fillers=False)
    assert rt.pairs_in("phonebook", 20, VOCAB) == 9  # (20 - 2) // 2
    assert (answers == 19).all()
    for row in ids:
        keys, values = row[0:18:2], row[1:18:2]
        assert len(set(keys)) == 9 and len(set(values)) == 9  # drawn without replacement
        (q,) = np.flatnonzero(keys == row[18])
        assert row[19] == values[q]
    # the queried pair is drawn uniformly: every depth of the book is asked for some example
    assert len({int(np.flatnonzero(r[0:18:2] == r[18])[0]) for r in ids}) == 9
    # odd lengths leave one filler before the query; the book stops at the keys there are
    ids, _ = rt.examples("phonebook", 21, 3, VOCAB)
    assert (ids[:, 18] == FILL).all()
    assert rt.pairs_in("phonebook", 512, VOCAB) == HALF


def test_passkey_hides_one_pair_at_a_random_depth_and_asks_for_it_at_the_end():
    length = 40
    ids, answers = rt.examples("passkey", length, 200, VOCAB, random_fillers=False)
    assert (answers == length - 1).all()
    depths = []
    for row in ids:
        (at,) = np.flatnonzero(row[: length - 2] != FILL)[:1]
        assert list(np.flatnonzero(row != FILL)) == [at, at + 1, length - 2, length - 1]
        assert row[at] == row[length - 2] and row[at + 1] == row[length - 1]
        depths.append(at)
    assert min(depths) == 0 and max(depths) == length - 4  # from the first token to just before the query


def test_copy_repeats_the_string_after_a_separator_and_scores_its_values():
    length = 23
    n = rt.pairs_in("copy", length, VOCAB)
    assert n == 5  # (23 - 1) // 4
    ids, answers = rt.examples("copy", length, 4, VOCAB, random_fillers=False)
    start = length - 2 * n
    assert (answers == start + 1 + 2 * np.arange(n)).all()
    assert (ids[:, : 2 * n] == ids[:, start:]).all()
    assert (ids[:, 2 * n : start] == FILL).all() and start - 2 * n == 3  # the separator
    assert rt.pairs_in("copy", 512, VOCAB) == HALF


def test_examples_are_seeded_and_stable_as_the_count_grows():
    a = rt.examples("phonebook", 32, 5, VOCAB, True, seed=1)
    b = rt.examples("phonebook", 32, 9, VOCAB, True, seed=1)
    assert (a[0] == b[0][:5]).all() and (a[1] == b[1][:5]).all()
    assert not (a[0] == rt.examples("phonebook", 32, 5, VOCAB, True, seed=2)[0]).all()
    # the tasks and lengths are streams of their own, and none is a training document's
    assert not (rt.examples("passkey", 32, 5, VOCAB, True, seed=1)[0][:, :4] == a[0][:, :4]).all()
    cfg = {"pairs": [4], "vocab_size": VOCAB, "seq_len": 33, "random_fillers": True}
    docs = {tuple(mqar.document(cfg, 1, i)[0]) for i in range(200)}
    assert not docs & {tuple(r) for r in a[0]}


def test_too_short_a_context_and_unknown_tasks_are_refused():
    with pytest.raises(ValueError, match="'copy' needs at least 5 tokens, got 4"):
        rt.examples("copy", 4, 1, VOCAB)
    with pytest.raises(ValueError, match="unknown retrieval task 'nope'"):
        rt.pairs_in("nope", 64, VOCAB)


@pytest.mark.parametrize(
    "correct, n, low, high",
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (97, 100, 0.9155, 0.9897)],
)
def test_wilson_interval(correct, n, low, high):
    assert rt.wilson_interval(correct, n) == pytest.approx((low, high), abs=1e-4)
    assert rt.wilson_interval(0, 0) == (0.0, 1.0)


def test_chance_is_a_uniform_guess_among_the_values():
    assert rt.chance("phonebook", 64, VOCAB) == rt.chance("passkey", 64, VOCAB) == 1 / HALF
    assert rt.chance("copy", 21, VOCAB) == (1 / HALF) ** 5


# ---- scoring


class Oracle(torch.nn.Module):
    """Reads the answer it is asked for from the input (logits peak at the next token): every greedy answer right."""

    def forward(self, x, **_kw):
        nxt = torch.cat([x[:, 1:], x[:, :1]], 1)
        return type("Out", (), {"logits": torch.nn.functional.one_hot(nxt, VOCAB + 5).float()})()


class Constant(torch.nn.Module):
    """Always the first value word."""

    def forward(self, x, **_kw):
        logits = torch.zeros(*x.shape, VOCAB + 5)
        logits[..., mqar.FIRST_WORD + HALF] = 1.0
        return type("Out", (), {"logits": logits})()


@pytest.mark.parametrize("task", rt.TASKS)
def test_an_oracle_scores_every_example_and_a_constant_model_chance(task):
    from archbench.evaluation.retrieval import exact_matches, score

    ids, answers = rt.examples(task, 48, 400, VOCAB, True, seed=0)
    s = score(exact_matches(Oracle(), ids, answers, 64, "cpu"))
    assert (s["correct"], s["n_examples"], s["accuracy"], s["answer_accuracy"]) == (400, 400, 1.0, 1.0)
    assert s["interval"][1] == 1.0 and s["interval"][0] > 0.99
    s = score(exact_matches(Constant(), ids, answers, 64, "cpu"))
    low, high = s["interval"]
    assert low <= rt.chance(task, 48, VOCAB) <= high
    if task == "copy":  # 11 values in a row: never all the same word
        assert s["correct"] == 0 and s["answer_accuracy"] == pytest.approx(1 / HALF, abs=0.02)


def _model(root, arch, **kw):
    return mqar_model_dir(root, arch, VOCAB, max_seq_len=16, **kw)


@pytest.mark.parametrize(
    "arch, kw, state",
    [
        ("llama", {}, lambda ctx: 2 * 2 * ctx * 32 * 4),  # K and V, 2 layers, ctx tokens, width 32, float32
        ("mamba2", {"ssm_chunk_size": 16}, lambda ctx: 2 * (96 * 4 + 64 * 16) * 4),  # fixed: conv window + SSM
        ("retnet", {}, lambda ctx: 2 * 2 * 16 * 32 * 4),
    ],
)
def test_retrieval_json_of_a_tiny_model(tmp_path, arch, kw, state, one_thread):
    from archbench.evaluation.retrieval import run_retrieval

    model = _model(tmp_path, arch, **kw)
    out = tmp_path / "retrieval.json"
    res = run_retrieval(
        str(model), str(out), [1, 4], examples=6, seed=0, batch_size=4, vocab_size=VOCAB, device="cpu", threads=1
    )
    assert json.loads(out.read_text())["entries"] == json.loads(json.dumps(res["entries"]))
    assert (res["arch"], res["seq_len"], res["vocab_size"]) == (arch, 16, VOCAB)
    got = [(e["task"], e["multiplier"], e["context"], e["pairs"], e["n_examples"]) for e in res["entries"]]
    assert got == [
        ("phonebook", 1, 16, 7, 6),
        ("passkey", 1, 16, 1, 6),
        ("copy", 1, 16, 3, 6),
        ("phonebook", 4, 64, 16, 6),
        ("passkey", 4, 64, 1, 6),
        ("copy", 4, 64, 15, 6),
    ]
    for e in res["entries"]:
        assert e["state_bytes"] == state(e["context"])
        assert e["interval"][0] <= e["accuracy"] <= e["interval"][1] and e["correct"] == round(6 * e["accuracy"])
    assert {e["mode"] for e in res["entries"]} == ({"parallel", "chunkwise"} if arch == "retnet" else {"full"})
    settings = {"multipliers": [1, 4], "tasks": list(rt.TASKS), "examples": 6, "seed": 0, "batch_size": 4}
    settings.update(vocab_size=VOCAB, random_fillers=True, dtype="fp32")
    assert res["provenance"]["settings_hash"] == settings_hash({"evaluation": "retrieval", **settings})


def test_learned_positions_skip_the_lengths_they_cannot_read(tmp_path, one_thread):
    from archbench.evaluation.retrieval import run_retrieval

    model = _model(tmp_path, "transformer", position="learned")
    res = run_retrieval(str(model), None, [1, 2], ["passkey"], examples=2, vocab_size=VOCAB, device="cpu")
    first, second = res["entries"]
    assert first["n_examples"] == 2 and second["skipped"].startswith("learned positions end at max_seq_len=16")


def test_a_model_of_another_vocabulary_is_refused(tmp_path):
    from archbench.evaluation.common import EvalError
    from archbench.evaluation.retrieval import run_retrieval

    model = _model(tmp_path, "llama")
    with pytest.raises(EvalError, match="not the MQAR word-level vocabulary of data.mqar"):
        run_retrieval(str(model), None, [1], examples=1, vocab_size=64, device="cpu")


# ---- the report


def _runs(*rows):
    """Per-run rows as report.questions.retrieval.rows gives them: (arch, point, val_loss, task, k, correct,
    n, state bytes, pairs), seed 0, 64-token training length, chance 1/128 (copy: 0)."""
    out = []
    for arch, point, val, task, k, correct, n, state, pairs in rows:
        out.append(
            {
                "arch": arch,
                "point": point,
                "seed": 0,
                "val_loss": val,
                "task": task,
                "multiplier": k,
                "context": 64 * k,
                "pairs": pairs,
                "n_examples": n,
                "correct": correct,
                "chance": 0.0 if task == "copy" else 1 / 128,
                "answer_accuracy": correct / n if n else None,
                "state_bytes": state,
                "skipped": None if n else "learned positions end at max_seq_len=64",
            }
        )
    return pd.DataFrame(out)


BOOK = {1: 31, 2: 63, 4: 127, 8: 128}


def test_sentence_says_keeps_falls_and_chance_only_as_the_intervals_do():
    from archbench.report.questions.retrieval import pool, words

    rows = []
    for k, (c_llama, c_mamba, c_retnet) in {1: (97, 90, 1), 2: (96, 60, 0), 4: (95, 30, 1), 8: (90, 12, 0)}.items():
        rows += [
            ("llama", "lr=0.003", 1.0, "phonebook", k, c_llama, 100, 8192 * k, BOOK[k]),
            ("mamba2", "lr=0.003", 1.1, "phonebook", k, c_mamba, 100, 11264, BOOK[k]),
            ("retnet", "lr=0.003", 1.2, "phonebook", k, c_retnet, 100, 8192, BOOK[k]),
            # a worse learning rate of Llama: not the selected point, not in the sentence
            ("llama", "lr=0.01", 2.0, "phonebook", k, 0, 100, 8192 * k, BOOK[k]),
        ]
    per = pool(_runs(*rows))
    assert list(per.columns[:4]) == ["arch", "point", "selected", "task"] and len(per) == 16
    assert per.loc[per["point"] == "lr=0.01", "selected"].eq(False).all()
    low, high = rt.wilson_interval(97, 100)
    first = per.iloc[0]
    assert (first.arch, first.multiplier, first.accuracy, first.low, first.high) == ("llama", 1, 0.97, low, high)
    assert words(per) == (
        "Long-context retrieval from 64 tokens (1x the training length) to 8x (exact-match greedy answers on the "
        "MQAR vocabulary, 100 examples per task and length, 95% Wilson intervals; key-value pairs held: phonebook "
        "31 at 1x to 128 at 8x; grid point selected on validation loss): "
        "Transformer++ (Llama) (state 8.0 KiB at 1x to 64.0 KiB at 8x): phonebook keeps 97% [92%, 99%] at 1x "
        "through 8x (90% [83%, 94%]). "
        "Mamba-2 (state 11.0 KiB at every length): phonebook falls from 90% [83%, 94%] at 1x to 12% [7%, 20%] at "
        "8x (below the 1x interval from 2x). "
        "RetNet (state 8.0 KiB at every length): phonebook at chance already at 1x (1% [0%, 5%], chance 1%). "
        "Which models keep retrieval beyond the training length, in words of the intervals: no task below its 1x "
        "interval through 8x: Transformer++ (Llama) (state growing with the context); a task falls: Mamba-2 (fixed "
        "state)."
    )


def test_sentence_names_unreadable_lengths_and_keeping_fixed_state_models():
    from archbench.report.questions.retrieval import pool, words

    rows = [("transformer", "p", 1.0, "copy", 1, 40, 50, 4096, 15)]
    rows += [("transformer", "p", 1.0, "copy", k, 0, 0, None, None) for k in (2, 4)]
    rows += [("retnet", "p", 1.0, "passkey", k, 48, 50, 2048, 1) for k in (1, 2, 4)]
    text = words(pool(_runs(*rows)))
    assert "; copy 15 at 1x;" not in text and "key-value pairs held: passkey 1, copy 15;" in text
    assert "50 examples per task and length" in text
    assert "copy 80% [67%, 89%] at 1x (one length measured) (cannot read 2x, 4x)" in text
    assert (
        "RetNet (state 2.0 KiB at every length): passkey keeps 96% [87%, 99%] at 1x through 4x (96% [87%, 99%])" in text
    )
    assert text.endswith("no task below its 1x interval through 4x: RetNet (fixed state); a task falls: none.")


def test_a_growing_state_that_falls_is_not_blamed_on_its_size():
    from archbench.report.questions.retrieval import pool, words

    rows = [("llama", "p", 1.0, "passkey", k, c, 100, 8192 * k, 1) for k, c in ((1, 100), (2, 64), (4, 31))]
    rows += [("mamba2", "p", 1.0, "passkey", k, 2, 100, 4096, 1) for k in (1, 2, 4)]
    text = words(pool(_runs(*rows)))
    assert "passkey falls from 100% [96%, 100%] at 1x to 31% [23%, 41%] at 4x (below the 1x interval from 2x)" in text
    assert "Mamba-2 (state 4.0 KiB at every length): passkey at chance already at 1x (2% [1%, 7%], chance 1%)" in text
    assert text.endswith(
        "no task below its 1x interval through 4x: none; a task falls: Transformer++ (Llama) (state growing with "
        "the context); a model whose state grows with the context and still falls loses retrieval for another "
        "reason than its state's size (e.g. positions past its training length)."
    )


def test_the_question_writes_its_table_and_figure_or_says_what_to_run(tmp_path):
    from archbench.report.questions import Inputs, runs_frame
    from archbench.report.questions.retrieval import COLUMNS, NOT_MEASURED, QUESTION

    metrics, files = [], []
    for arch, acc in (("llama", 0.9), ("mamba2", 0.3)):
        run = tmp_path / "runs" / arch / "p" / "seed~0"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"arch": arch, "seed": 0, "val_loss": 1.0, "hparams": {}}))
        metrics.append(str(run / "metrics.json"))
        ev = tmp_path / "eval" / arch / "p" / "seed~0"
        ev.mkdir(parents=True)
        entries = [
            {
                "task": t,
                "multiplier": k,
                "context": 16 * k,
                "pairs": 3,
                "n_examples": 10,
                "correct": round(10 * acc / k),
                "accuracy": round(10 * acc / k) / 10,
                "interval": [0, 1],
                "answers": 10,
                "answer_accuracy": 0.5,
                "chance": 1 / 16,
                "mode": "full",
                "state_bytes": 100 * (k if arch == "llama" else 1),
            }
            for t in rt.TASKS
            for k in (1, 2)
        ]
        (ev / "retrieval.json").write_text(json.dumps({"arch": arch, "seq_len": 16, "entries": entries}))
        files.append(str(ev / "retrieval.json"))
    png, table_csv = tmp_path / "retrieval.png", tmp_path / "retrieval.csv"
    result = QUESTION.answer(Inputs({"retrieval": files}, runs_frame(metrics), {}), str(png), str(table_csv))
    csv = pd.read_csv(table_csv)
    assert list(csv.columns) == COLUMNS and len(csv) == 12
    assert png.stat().st_size > 0
    assert result["archs"]["llama"]["tasks"]["phonebook"][1]["accuracy"] == 0.9
    assert (
        "Mamba-2 (state 0.1 KiB at every length): phonebook keeps 30% [11%, 60%] at 1x through 2x (20% [6%, 51%])"
        in result["sentence"]
    )
    result = QUESTION.answer(Inputs({}, runs_frame(metrics), {}), str(png), str(table_csv))
    assert result == {"measured": False, "sentence": NOT_MEASURED}


# ---- configuration and wiring


GRID = {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [64]}
MQAR = {"source": "mqar", "mqar": {"seq_len": 64, "pairs": [4]}}


@pytest.mark.parametrize(
    "retrieval, data, message",
    [
        ({"enabled": True}, {}, "config key 'retrieval.enabled': the retrieval tasks are built on the MQAR vocabulary"),
        ({"nope": 1}, MQAR, "config key 'retrieval.nope': unknown key (allowed here: enabled, multipliers, tasks"),
        ({"tasks": ["phonebook", "lookup"]}, MQAR, "config key 'retrieval.tasks[1]': 'lookup' is not one of"),
        ({"multipliers": [0, 2]}, MQAR, "config key 'retrieval.multipliers[0]': 0 is less than the minimum of 1"),
        ({"examples": 0}, MQAR, "config key 'retrieval.examples': 0 is less than the minimum of 1"),
        ({"tasks": []}, MQAR, "config key 'retrieval.tasks': [] should be non-empty"),
    ],
)
def test_bad_retrieval_keys_stop_the_run_naming_the_key(retrieval, data, message):
    with pytest.raises(ConfigError) as err:
        validate_config({"grid": GRID, "data": data, "retrieval": retrieval})
    assert str(err.value).startswith(message), str(err.value)


def test_retrieval_applies_to_mqar_runs_that_ask_for_it_and_its_options():
    from archbench.cli import _config, _parser
    from archbench.evaluation.registry import applicable, get_evaluation

    names = lambda cfg: [e.name for e in applicable(validate_config(cfg))]  # noqa: E731
    assert "retrieval" not in names({"grid": GRID, "data": MQAR})
    assert "retrieval" in names({"grid": GRID, "data": MQAR, "retrieval": {"enabled": True}})
    cfg = validate_config({"grid": GRID, "data": MQAR, "retrieval": {"enabled": True, "examples": 7}})
    assert get_evaluation("retrieval").build_args(cfg) == {
        "multipliers": [1, 2, 4, 8],
        "tasks": ["phonebook", "passkey", "copy"],
        "examples": 7,
        "seed": 0,
        "batch_size": 16,
        "vocab_size": 256,
        "random_fillers": True,
        "device": "auto",
        "dtype": "fp32",
    }
    a = _parser().parse_args(["retrieval", "M", "--multipliers", "1", "2", "--tasks", "copy", "--vocab-size", "32"])
    args = get_evaluation("retrieval").build_args(_config(a))
    assert (args["multipliers"], args["tasks"], args["vocab_size"], args["examples"]) == ([1, 2], ["copy"], 32, 100)


def test_the_preset_lists_one_retrieval_job_per_run(tmp_path):
    from test_presets import check_counts, dry_run, load

    preset = load("retrieval.yaml")
    counts = check_counts(dry_run(tmp_path, "retrieval.yaml"), preset)
    assert counts["retrieval"] == counts["recall"] == counts["train"] == len(preset["archs"]) == 3
    assert sum(counts.values()) == 34
