"""The report's hybrid-ratio question (report/questions/hybrid.py): per attention fraction the grid point
selected on validation loss, and a U shape (an interior fraction below both ends, the Mamba-2 paper's
Table 2) claimed only with seed-paired 95% intervals from >= 3 seeds, Holm-corrected."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from archbench.report.questions import Inputs, hybrid
from archbench.report.questions.runs import runs_frame

EVERY = [0, 8, 4, 2, 1]  # the hybrid-ratio preset's axis at 8 layers: 0, 12.5, 25, 50, 100% attention
FRACTIONS = [0.0, 0.125, 0.25, 0.5, 1.0]
U = [3.00, 2.95, 2.99, 2.99, 3.00]  # 12.5% best by 0.05 nats against both ends
MONOTONE = [3.00, 2.95, 2.90, 2.85, 2.80]  # more attention is always better: no interior optimum


def runs(means, seeds=3, sigma=0.01, arch="retnet", lrs=None, seed=0) -> pd.DataFrame:
    """One row per run (hybrid.RUN_COLUMNS): test loss = mean + a shared per-seed offset + N(0, sigma);
    validation loss 0.01 above it. ``lrs``: {learning rate: (validation shift, test shift)} per fraction."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 0.02, seeds)
    rows = []
    for every, mean in zip(EVERY, means):
        for lr, (val_shift, test_shift) in (lrs or {0.002: (0.0, 0.0)}).items():
            for s in range(seeds):
                test = mean + offsets[s] + rng.normal(0, sigma)
                rows.append(
                    {
                        "arch": arch,
                        "point": f"attention_every={every}, learning_rate={lr}",
                        "seed": s,
                        "val_loss": test + 0.01 + val_shift,
                        "test_loss": test + test_shift,
                        "params": 460_000.0,
                        "flops_per_token": 3.0e6 + 1e4 * every,
                        "layers": 8,
                        "attention_every": every,
                        "attention_layers": [],
                        "hybrid": True,
                    }
                )
    return pd.DataFrame(rows, columns=hybrid.RUN_COLUMNS)


def answer_of(frame):
    selected = hybrid.by_fraction(frame)
    v = hybrid.verdict(selected)
    return selected, v, hybrid.words(selected, v), hybrid.fraction_table(selected, v)


def test_a_true_u_is_claimed_with_both_intervals_below_zero():
    selected, v, sentence, table = answer_of(runs(U))
    assert selected["retnet"]["fractions"] == FRACTIONS
    best = selected["retnet"]["rows"][v["retnet"]["best"]]
    assert (best["fraction"], best["pattern"], best["attention_every"]) == (0.125, "RRRRRRRA", 8)
    assert v["retnet"]["claimed"] is True and v["_m"] == 6  # 3 interior fractions x 2 ends
    diffs = [c for c in v["retnet"]["comparisons"] if c["fraction"] == 0.125]
    assert [c["end"] for c in diffs] == [0.0, 1.0]
    for c in diffs:
        assert c["high"] < 0 and c["p_holm"] < 0.05 and c["mean"] == pytest.approx(-0.05, abs=0.02)
    assert "U shape: an interior fraction beats both ends — best interior fraction 12.5% (RRRRRRRA, " in sentence
    assert f"minus 0% (pure) {diffs[0]['mean']:+.3f} [{diffs[0]['low']:+.3f}, {diffs[0]['high']:+.3f}]" in sentence
    assert "minus 100% (all attention) " in sentence and "Holm over the 6 comparisons made" in sentence
    assert sentence.endswith(
        "Published shape: the Mamba-2 paper (arXiv 2405.21060, Table 2; 48 layers, 350M parameters, the Pile) "
        "is best with ~10% attention layers, 8.26 perplexity against 8.60 with none and 8.50 with half."
    )
    rows = table[table["kind"] == "fraction"]
    assert rows["pattern"].tolist() == ["RRRRRRRR", "RRRRRRRA", "RRRARRRA", "RARARARA", "AAAAAAAA"]
    assert rows["n_seeds"].tolist() == [3] * 5 and rows["test_loss_low"].notna().all()
    assert rows["params"].tolist() == [460_000.0] * 5
    assert rows["flops_per_token"].tolist() == [3.0e6 + 1e4 * k for k in EVERY]
    assert rows["best_interior"].tolist() == [False, True, False, False, False]
    assert len(table[table["kind"] == "difference"]) == 6


def test_a_monotone_curve_claims_no_u():
    selected, v, sentence, _ = answer_of(runs(MONOTONE))
    assert v["retnet"]["claimed"] is False
    assert "RetNet (8 layers; 0%, 12.5%, 25%, 50%, 100% attention): no U shape detectable — best interior " in sentence
    assert "lowest validation loss at the end 100% (all attention)" in sentence


def test_one_seed_gives_no_interval():
    selected, v, sentence, table = answer_of(runs(U, seeds=1))
    assert v["retnet"]["claimed"] is None and v["_m"] == 0
    assert "no interval: 1 seed(s), needs ≥ 3 — best interior fraction" in sentence
    assert "U shape:" not in sentence
    diffs = table[table["kind"] == "difference"]
    assert diffs["diff"].notna().all() and diffs["diff_low"].isna().all()


def test_no_attention_axis_is_not_measured(tmp_path):
    not_measured = (
        "Hybrid ratio (does an interior fraction of attention layers beat the pure recurrent model and the "
        "most-attention end?) was not measured: no architecture's runs vary model.attention_every / "
        "model.attention_layers (run config/presets/hybrid-ratio.yaml)."
    )
    assert hybrid.words(*answer_of(runs(U).assign(hybrid=False))[:2]) == not_measured
    one = runs(U)
    assert hybrid.by_fraction(one[one["attention_every"] == 4]) == {}  # one fraction: no axis
    # a report of ordinary runs (metrics.json without attention settings)
    tree = _tree(tmp_path, {"transformer": [(0, 3.0)]})
    png, csv = str(tmp_path / "hybrid.png"), str(tmp_path / "hybrid.csv")
    result = hybrid.QUESTION.answer(Inputs({}, runs_frame(tree), {}), png, csv)
    assert result == {"measured": False, "archs": {}, "sentence": not_measured}
    assert open(png, "rb").read(4) == b"\x89PNG" and pd.read_csv(csv).empty


def test_selection_uses_validation_not_test_loss():
    # lr 0.002: lowest validation loss and the higher test loss (+0.5); lr 0.001 the reverse
    frame = runs(U, lrs={0.002: (0.0, 0.5), 0.001: (0.3, 0.0)})
    selected, v, _, table = answer_of(frame)
    rows = selected["retnet"]["rows"]
    assert [r["point"] for r in rows] == [f"attention_every={k}, learning_rate=0.002" for k in EVERY]
    assert [r["test_loss"] for r in rows] == pytest.approx([m + 0.5 for m in U], abs=0.05)
    # the best interior fraction is chosen on validation loss too: 25% has the lowest test loss here
    frame = runs(U)
    frame.loc[frame["attention_every"] == 4, "test_loss"] -= 0.2
    selected, v, _, _ = answer_of(frame)
    assert selected["retnet"]["rows"][v["retnet"]["best"]]["fraction"] == 0.125


def test_a_flat_curve_claims_a_u_in_at_most_5_percent_of_reports():
    """2,000 simulated reports through the question's own arrays (u_arrays: comparisons, Holm, the best
    interior on validation loss, the claim): identical fractions, 3 seeds, 0.01 nats of seed noise."""
    rng = np.random.default_rng(35)
    trials = 2000

    def rate(means) -> float:
        test = (
            np.asarray(means)[None, :, None] + rng.normal(0, 0.02, (trials, 1, 3)) + rng.normal(0, 0.01, (trials, 5, 3))
        )
        val = test + rng.normal(0, 0.002, test.shape)
        return float(hybrid.u_arrays(test, val, FRACTIONS)["claimed"].mean())

    null, power = rate([3.0] * 5), rate(U)
    print(f"hybrid U shape: flat curve claimed in {null:.2%} of {trials} reports; true 0.05-nat U found in {power:.2%}")
    assert null <= 0.05
    assert power >= 0.9


def _tree(root, archs: dict) -> list[str]:
    """metrics.json files: {arch: [(attention_every, test loss), ...]} x 3 seeds; only retnet's model
    config has the hybrid settings (a Transformer in the same grid carries attention_every in hparams)."""
    paths = []
    for arch, points in archs.items():
        for every, loss in points:
            for seed in range(3):
                folder = root / "runs" / arch / f"attention_every~{every}" / f"seed~{seed}"
                folder.mkdir(parents=True)
                hp = {"layers": 8, "embed_dim": 64, "learning_rate": 0.002, "attention_every": every}
                model = {"embed_dim": 64, **({"attention_every": every} if arch == "retnet" else {})}
                test = loss + 0.01 * seed
                metrics = {
                    "arch": arch,
                    "seed": seed,
                    "hparams": hp,
                    "model_config": model,
                    "params_non_embedding": 460_000,
                    "val_loss": test + 0.01,
                    "test_loss": test,
                    "tokens_seen": 1000,
                    "train_flops_per_token": 3.0e6,
                }
                (folder / "metrics.json").write_text(json.dumps(metrics))
                paths.append(str(folder / "metrics.json"))
    return paths


def test_answer_reads_the_runs_files_and_leaves_out_non_hybrid_architectures(tmp_path):
    tree = _tree(tmp_path, {"retnet": list(zip(EVERY, U)), "transformer": list(zip(EVERY, U))})
    png, csv = str(tmp_path / "plots" / "hybrid.png"), str(tmp_path / "hybrid.csv")
    result = hybrid.QUESTION.answer(Inputs({}, runs_frame(tree), {}), png, csv)
    assert result["measured"] and list(result["archs"]) == ["retnet"]
    assert result["archs"]["retnet"]["fractions"] == FRACTIONS
    assert result["archs"]["retnet"]["u_shape"] is True  # seed noise is a shared offset here: exact differences
    assert open(png, "rb").read(4) == b"\x89PNG"
    table = pd.read_csv(csv)
    assert set(table["arch"]) == {"retnet"} and (table["kind"] == "fraction").sum() == 5


def test_holm_family_spans_every_architecture():
    mamba = runs(U[:4], arch="mamba2", seed=1)  # 0-50%: all-attention cannot be matched for Mamba-2
    one = hybrid.verdict(hybrid.by_fraction(runs(U)))
    both_selected = hybrid.by_fraction(pd.concat([runs(U), mamba]))
    both = hybrid.verdict(both_selected)
    assert both["_m"] == 6 + 4 and list(both_selected) == ["retnet", "mamba2"]
    assert [r["pattern"] for r in both_selected["mamba2"]["rows"]] == ["MMMMMMMM", "MMMMMMMA", "MMMAMMMA", "MAMAMAMA"]
    for a, b in zip(one["retnet"]["comparisons"], both["retnet"]["comparisons"]):
        assert a["p"] == b["p"] and b["p_holm"] >= a["p_holm"]
    assert "Mamba-2 (8 layers; 0%, 12.5%, 25%, 50% attention): " in hybrid.words(both_selected, both)
