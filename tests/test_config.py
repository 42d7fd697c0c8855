"""Config validation: defaults from the schema, and one clear error naming the key for each bad input."""

import copy
from pathlib import Path

import pytest
import yaml

from archbench.config import grid_points, run_settings, validate_config
from archbench.errors import ConfigError

DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/config.yaml").read_text())


def config(**changes):
    cfg = copy.deepcopy(DEFAULT)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        if value is DELETE:
            node.pop(leaf)
        else:
            node[leaf] = value
    return cfg


DELETE = object()


def test_default_config_is_valid_and_gets_schema_defaults():
    cfg = validate_config(config())
    assert cfg["tokenizer"]["min_frequency"] == 2  # filled from the schema
    assert cfg["training"]["early_stopping"]["patience"] == 5
    assert cfg["data"]["hub"]["split"] == "train"
    assert [p["learning_rate"] for p in grid_points(cfg)] == [1.0e-3, 3.0e-3]  # a real choice, made on validation


def test_minimal_config_is_completed_from_schema_defaults():
    cfg = validate_config(
        {"grid": {"learning_rate": [1.0e-3], "embed_dim": [64], "ffn_dim": [128], "heads": [2], "seq_len": [64]}}
    )
    assert cfg["archs"] == ["retnet", "transformer"]
    assert cfg["splits"] == {"train": 0.9, "validation": 0.05, "test": 0.05}
    assert cfg["data"]["source"] == "default"


def test_grid_entries_search_or_override_fixed_settings():
    cfg = validate_config(config(grid__learning_rate=[3.0e-3], grid__layers=[1, 3], grid__max_steps=7))
    points = grid_points(cfg)
    assert [p["layers"] for p in points] == [1, 3]
    settings = run_settings(cfg, points[1])
    assert (settings["layers"], settings["max_steps"], settings["learning_rate"]) == (3, 7, 3.0e-3)


BAD = [
    # (changes, expected fragment of the message)
    (
        {"grid__learning_rate": ["1e-3"]},
        "config key 'grid.learning_rate[0]': '1e-3' is not of type 'number' (YAML reads 1e-3 as a string",
    ),
    ({"grid__embed_dim": ["128"]}, "config key 'grid.embed_dim[0]': '128' is not of type 'integer'"),
    ({"archs": ["retnet", "gpt"]}, "config key 'archs[1]': 'gpt' is not one of"),
    ({"archs": []}, "config key 'archs'"),
    ({"trainig": {"batch_size": 4}}, "config key 'trainig': unknown key"),
    ({"training__batch_sise": 4}, "config key 'training.batch_sise': unknown key"),
    ({"grid__lr": [0.1]}, "config key 'grid.lr': unknown hyperparameter"),
    ({"splits__test": 0.2}, "config key 'splits': ratios must sum to 1"),
    ({"splits__train": -0.1}, "config key 'splits.train'"),
    ({"grid__heads": [3]}, "embed_dim 128 is not divisible by heads 3"),
    (
        {"grid__heads": [32], "grid__embed_dim": [96]},
        "'grid.embed_dim'/'grid.heads': the head dimension embed_dim / heads = 96/32 = 3 must be even",
    ),
    # every architecture's rules apply, not only RetNet's (a Transformer-only config used to fail every train job)
    (
        {"archs": ["transformer"], "grid__heads": [8], "grid__embed_dim": [24]},
        "the head dimension embed_dim / heads = 24/8 = 3 must be even (rotary / xPos positions rotate pairs) (arch transformer)",
    ),
    (
        {"archs": ["longnet"], "model__dilated_ratios": [1, 3]},
        "config keys 'model.segment_lengths'/'model.dilated_ratios': each dilated ratio must be >= 1 and divide its segment length",
    ),
    ({"report": {"baseline": "gpt"}}, "config key 'report.baseline': 'gpt' is not one of"),
    ({"grid__seq_len": [4]}, "config key 'grid.seq_len[0]': 4 is less than the minimum of 8"),
    ({"tokenizer__vocab_size": 100}, "config key 'tokenizer.vocab_size': 100 is less than the minimum of 260"),
    (
        {"data__source": "local", "data__path": "/nonexistent/corpus/*.txt"},
        "config key 'data.path': '/nonexistent/corpus/*.txt' does not exist",
    ),
    ({"data__source": "local"}, "config key 'data.path': required when data.source is local"),
    ({"data__source": "hub"}, "config key 'data.hub.name': required when data.source is hub"),
    ({"grid__learning_rate": []}, "config key 'grid.learning_rate'"),
    ({"grid__ffn_dim": DELETE}, "'ffn_dim' is a required property"),
    ({"grid__layers": [0]}, "config key 'grid.layers[0]': 0 is less than the minimum of 1"),
    ({"training__max_steps": "100"}, "config key 'training.max_steps': '100' is not of type 'integer', 'null'"),
    (
        {"model__value_embed_dim": 130},
        "config keys 'model.value_embed_dim'/'grid.heads': value_embed_dim 130 is not divisible by heads 4 (arch retnet)",
    ),
    ({"seeds": [0, 0]}, "config key 'seeds'"),
]


@pytest.mark.parametrize("changes,fragment", BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_bad_config_gives_one_error_naming_the_key(changes, fragment):
    with pytest.raises(ConfigError) as err:
        validate_config(config(**changes))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("changes,fragment", BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_snakemake_exits_before_any_job_with_the_key_and_no_traceback(changes, fragment, tmp_path):
    from workflow_helpers import snakemake

    cfg = config(**changes)
    cfg["results"] = str(tmp_path / "results")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # --replace-workflow-config: the file is the whole config (a merge could not delete a key)
    proc = snakemake(tmp_path, "--cores", "1", "--replace-workflow-config", configfile=path, check=False, timeout=300)
    assert proc.returncode != 0
    assert "archbench: invalid config: " in proc.stderr and fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_empty_results_is_refused():
    with pytest.raises(
        ConfigError, match=r"^config key 'results': empty \(outputs would be written at the filesystem root\)"
    ):
        validate_config(config(results=""))


@pytest.mark.parametrize(
    "changes, key, value",
    [
        ({"grid__devices": ["../../../../../outside"]}, "grid.devices[0]", "'../../../../../outside'"),
        ({"grid__devices": [1, "0/1"]}, "grid.devices[1]", "'0/1'"),
        ({"grid__devices": [".hidden"]}, "grid.devices[0]", "'.hidden'"),
        ({"grid__devices": ["x~y"]}, "grid.devices[0]", "'x~y'"),
    ],
)
def test_values_that_become_folder_names_must_be_safe(changes, key, value):
    with pytest.raises(ConfigError) as err:
        validate_config(config(**changes))
    assert str(err.value) == (
        f"config key '{key}': {value} becomes part of an output folder's name and may only contain letters, "
        "digits, '.', '_', '+', '-', '[', ']', ',' and spaces (not first: '.')"
    )


def test_safe_grid_values_of_every_kind_pass():
    cfg = validate_config(
        config(
            grid__learning_rate=[3.0e-3],
            grid__devices=[1, "auto"],
            grid__betas=[[0.9, 0.98], [0.9, 0.95]],
            grid__dropout=[0.0, 0.1],
        )
    )
    assert len(grid_points(cfg)) == 8


def test_config_overrides_are_read_by_the_schema_types():
    """What `--config training='{batch_size: 8}' grid='{learning_rate: [1.0e-3, 3e-3]}' seeds=[0,1]` gives:
    Snakemake's YAML BaseLoader leaves every nested scalar a string."""
    overrides = {
        "training": {
            "batch_size": "8",
            "devices": "auto",
            "gradient_clip_val": "null",
            "early_stopping": {"enabled": "false"},
        },
        "grid": {"learning_rate": ["1.0e-3", "3e-3"], "weight_decay": ["0.1", "0.2"], "betas": ["0.9", "0.95"]},
        "seeds": ["0", "1"],
        "data": {"path": "123"},
    }
    cfg = config()
    for section, value in overrides.items():
        cfg[section] = {**cfg.get(section, {}), **value} if isinstance(value, dict) else value
    cfg = validate_config(cfg, overrides=overrides)
    assert cfg["training"]["batch_size"] == 8 and cfg["training"]["devices"] == "auto"
    assert cfg["training"]["gradient_clip_val"] is None and cfg["training"]["early_stopping"]["enabled"] is False
    assert cfg["grid"]["learning_rate"] == [1.0e-3, 3.0e-3] and cfg["grid"]["weight_decay"] == [0.1, 0.2]
    assert cfg["grid"]["betas"] == [0.9, 0.95] and cfg["seeds"] == [0, 1]
    assert cfg["data"]["path"] == "123"  # a string setting stays a string
    # the same strings written in a config file are still an error (a quoted number there is a typo)
    with pytest.raises(ConfigError, match="config key 'training.batch_size': '8' is not of type 'integer'"):
        validate_config(config(training__batch_size="8"))
    with pytest.raises(ConfigError, match="config key 'training.batch_size': 'eight' is not of type 'integer'"):
        validate_config(config(training__batch_size="eight"), overrides={"training": {"batch_size": "eight"}})


def test_snakemake_config_overrides_reach_the_jobs_typed(tmp_path):
    """The README's `--config key=value` with nested values, through the real Snakemake command line."""
    from workflow_helpers import dry_run_counts

    counts = dry_run_counts(
        tmp_path,
        "--config",
        f"results={tmp_path / 'results'}",
        "training={batch_size: 8}",
        "grid={learning_rate: [1.0e-3, 3e-3], embed_dim: [128], ffn_dim: [256], heads: [4], seq_len: [128]}",
    )
    assert counts["train"] == 2 * 3  # two learning rates x the default run's three architectures
