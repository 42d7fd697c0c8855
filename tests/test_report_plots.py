"""Figures fit for a paper (issue 34): 200 dpi PNG, SVG with real <text>, titles in words, the
architecture on the x axis at matched size, labelled learning-rate points, MiB, one validation point
per evaluation."""

import re

import pandas as pd
from PIL import Image

from archbench.report import figures, plots


def seeds_table(params: dict) -> pd.DataFrame:
    rows = []
    for arch, n in params.items():
        for lr, loss in ((0.003, 4.1), (0.001, 4.0)):
            rows.append(
                {
                    "arch": arch,
                    "point": f"learning_rate~{lr}_embed_dim~128",
                    "learning_rate": lr,
                    "embed_dim": 128,
                    "test_loss_mean": loss,
                    "test_loss_std": float("nan"),
                    "test_loss_ci_high": float("nan"),
                    "params_total_mean": n,
                    "tokens_per_s_mean": 1000.0,
                    "tokens_per_s_std": float("nan"),
                }
            )
    return pd.DataFrame(rows)


def svg_texts(path) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text())


def test_matched_sizes_put_the_architecture_on_the_axis_with_labelled_points(tmp_path):
    seeds = seeds_table({"retnet": 1_507_968, "transformer": 1_508_200, "llama": 1_508_100})
    plots.plot_loss_vs_params(seeds, str(tmp_path), ["learning_rate", "embed_dim"])
    texts = svg_texts(tmp_path / "loss_vs_params.svg")
    assert "Test loss of each architecture at every grid point" in texts
    assert {"RetNet", "Transformer", "Transformer++ (Llama)"} <= set(texts)  # tick lines and legend
    assert texts.count("1.51M params") == 3
    assert texts.count("lr 0.003") == texts.count("lr 0.001") == 3  # embed_dim does not vary: not shown
    assert not any("above" in t or "embed" in t for t in texts)
    with Image.open(tmp_path / "loss_vs_params.png") as png:
        assert round(png.info["dpi"][0]) == figures.DPI == 200


def test_sizes_10x_apart_go_on_a_log_parameter_axis(tmp_path):
    plots.plot_throughput(seeds_table({"retnet": 1e5, "transformer": 2e6}), str(tmp_path), ["learning_rate"])
    texts = svg_texts(tmp_path / "throughput.svg")
    assert "parameters (total), log scale" in texts and "training throughput (tokens/s)" in texts
    assert "1.51M params" not in texts


def test_curves_keep_one_validation_point_per_evaluation_and_a_worded_title(tmp_path):
    run = tmp_path / "run"
    (run / "logs" / "csv").mkdir(parents=True)
    (run / "logs" / "csv" / "metrics.csv").write_text(
        "step,train_loss,val_loss\n49,5.0,\n99,4.5,\n99,,4.6\n199,4.2,\n199,,4.3\n200,,4.3\n"
    )
    assert plots.validation_points(plots.read_curve(str(run)))["step"].tolist() == [99, 200]
    grid = pd.DataFrame(
        [{"arch": "retnet", "seed": 0, "point": "learning_rate~0.003_seq_len~128", "run_dir": str(run)}]
    )
    assert plots.plot_curves(grid, str(tmp_path / "curves")) == ["learning_rate-0.003_seq_len-128"]
    texts = svg_texts(tmp_path / "curves" / "learning_rate-0.003_seq_len-128.svg")
    assert "Validation loss during training" in texts and "learning rate 0.003, seq len 128" in texts
    assert {"RetNet", "training loss (faint)"} <= set(texts)


def test_coinciding_architectures_get_their_own_marker_and_dashes():
    kw = {a: figures.line_kw(a) for a in ("retnet", "transformer", "llama")}
    assert len({k["marker"] for k in kw.values()}) == len({str(k["ls"]) for k in kw.values()}) == 3
    assert figures.mode_name("kv_cache") == "KV cache" and figures.mib(3 * 2**20) == 3
