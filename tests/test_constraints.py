"""One source for every cross-key rule: the parse-time check rejects exactly the settings the model
config classes reject, for every registered architecture (bad configs derived from the classes)."""

import itertools
import re

import pytest

from archbench.config import check_models, validate_config
from archbench.errors import ConfigError
from archbench.models.registry import ARCHS
from workflow_helpers import tiny_config

# Candidate settings inside the schema's per-key ranges (so only cross-key rules decide).
WIDTHS = dict(embed_dim=[16, 24, 32], heads=[2, 3, 4, 8])
PER_ARCH = {
    "retnet": dict(value_embed_dim=[None, 24, 40]),
    "longnet": dict(segment_lengths=[[8, 16]], dilated_ratios=[[1, 2], [1, 3], [2, 4], [1]]),
}


def candidates(arch):
    axes = {**WIDTHS, **PER_ARCH.get(arch, {})}
    for combo in itertools.product(*axes.values()):
        yield dict(zip(axes, combo))


def as_config(tmp_path, arch, s):
    model = {"layers": 1, **{k: v for k, v in s.items() if k not in WIDTHS}}
    cfg = {
        "archs": [arch],
        "results": str(tmp_path / "results"),
        "grid": {
            "learning_rate": [1.0e-3],
            "embed_dim": [s["embed_dim"]],
            "ffn_dim": [64],
            "heads": [s["heads"]],
            "seq_len": [32],
        },
        "model": model,
    }
    return cfg


def model_rejects(arch, s) -> str | None:
    """The model config class's verdict (the oracle): its ValueError message, or None if accepted."""
    from archbench.models import make_config

    try:
        make_config(arch, vocab_size=300, max_seq_len=32, ffn_dim=64, layers=1, **s)
    except ValueError as err:
        return str(err)
    return None


def derived_cases():
    return [(arch, s) for arch in ARCHS for s in candidates(arch)]


def test_registry_constraints_are_the_config_classes_rules():
    for name, arch in ARCHS.items():
        assert arch.check() is arch.config_cls().check_settings, name


@pytest.mark.parametrize("arch", list(ARCHS))
def test_parse_time_check_agrees_with_the_model_classes(arch, tmp_path):
    """validate_config's model step (check_models) on each candidate, with the schema defaults filled once."""
    base = validate_config(as_config(tmp_path, arch, {"embed_dim": 32, "heads": 2}))
    rejected = accepted = 0
    for s in candidates(arch):
        verdict = model_rejects(arch, s)
        cand = as_config(tmp_path, arch, s)
        cfg = {**base, "grid": cand["grid"], "model": {**base["model"], **cand["model"]}}
        if verdict is None:
            check_models(cfg)  # whatever the model accepts, the pipeline accepts
            accepted += 1
        else:
            with pytest.raises(ConfigError) as err:
                check_models(cfg)
            msg = str(err.value)
            assert msg.startswith("config key") and verdict in msg and f"(arch {arch})" in msg, (s, msg)
            assert "\n" not in msg
            rejected += 1
    assert rejected and accepted  # the candidates exercise both sides


def test_derived_bad_configs_stop_snakemake_before_any_job(tmp_path):
    """The derived bad configs cover every rule (>= 10 distinct); one per architecture runs through
    snakemake itself, which exits at parse time with the key and writes nothing."""
    import yaml

    from workflow_helpers import snakemake

    rules, first = set(), {}
    for arch, s in derived_cases():
        verdict = model_rejects(arch, s)
        if verdict is not None:
            rules.add((arch, re.sub(r"[\d\[\], ]+", " ", verdict)))  # the rule, not its numbers
            first.setdefault(arch, s)
    assert len(rules) >= 10, sorted(rules)
    for i, (arch, s) in enumerate(first.items()):
        work = tmp_path / str(i)
        work.mkdir()
        path = tiny_config(work, archs=[arch])
        cfg = yaml.safe_load(path.read_text())
        bad = as_config(work, arch, s)
        cfg["grid"].update(bad["grid"])
        cfg["model"] = bad["model"]
        path.write_text(yaml.safe_dump(cfg))
        proc = snakemake(work, "--cores", "1", configfile=path, check=False, timeout=300)
        assert proc.returncode != 0, (arch, s)
        assert "archbench: invalid config: config key" in proc.stderr and f"(arch {arch})" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (work / "results").exists()
