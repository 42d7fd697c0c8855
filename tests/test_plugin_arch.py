"""Adding an architecture is one folder plus one entry-point line: a toy architecture defined outside
the package, registered through the `archbench.archs` entry point, with a model setting of its own
(`toy_gain`: its schema fragment, its check, its config field), is registered, checked and built
with no other change; its run through the tiny pipeline beside RetNet is in test_plugins_pipeline.py."""

import os
import subprocess
import sys
import textwrap

import pytest

# The spec (torch-free, what the entry point imports): a Transformer under another name with one setting
# of its own, `toy_gain` (a multiplier the toy's config stores; its rules: the Transformer's, and
# toy_gain <= 10).
TOY_MODULE = '''
"""A toy architecture for archbench's plugin test."""
from archbench.models.constraints import ConstraintError
from archbench.models.registry import register_arch
from archbench.models.spec import Arch
from archbench.models.transformer import check as transformer_check

SCHEMA_FRAGMENT = {
    "toy_gain": {"type": "number", "minimum": 0, "default": 1.0, "description": "The toy's own setting."}
}


def check(s):
    transformer_check(s)
    if (s.get("toy_gain") or 0) > 10:
        raise ConstraintError(["toy_gain"], f"toy_gain must be <= 10, got {s['toy_gain']}")


def _config():
    from toyarch_models import ToyConfig

    return ToyConfig


def _model():
    from toyarch_models import ToyForCausalLM

    return ToyForCausalLM


ARCH = register_arch(
    Arch("toy", _config, _model, state="kv_cache", width_knob="ffn_dim", color="tab:brown", display="Toy",
         constraints=check, schema_fragment=SCHEMA_FRAGMENT)
)
'''
# The modeling code (torch): the Transformer's, with its own config class, model type and setting.
TOY_MODELS = """
from typing import ClassVar

from archbench.models.transformer.modeling import TransformerConfig, TransformerForCausalLM
from toyarch import check


class ToyConfig(TransformerConfig):
    model_type = "archbench_toy"
    hparam_names: ClassVar[tuple] = TransformerConfig.hparam_names + ("toy_gain",)
    check_settings: ClassVar = staticmethod(check)

    toy_gain: float = 1.0


class ToyForCausalLM(TransformerForCausalLM):
    config_class = ToyConfig
    arch = "toy"
"""


def write_plugin(site):
    """A package as pip would install it: modules plus a dist-info folder declaring the entry point."""
    (site / "toyarch.py").write_text(textwrap.dedent(TOY_MODULE))
    (site / "toyarch_models.py").write_text(textwrap.dedent(TOY_MODELS))
    info = site / "toyarch-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyarch\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[archbench.archs]\ntoy = toyarch\n")


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


def test_the_entry_point_registers_the_toy_architecture_without_torch(plugin_env):
    code = (
        "import sys; from archbench.models.registry import ARCHS, get_arch; "
        "from archbench.config import validate_config; "
        "a = get_arch('toy'); assert a.display == 'Toy' and a.state == 'kv_cache'; "
        "cfg = validate_config({'archs': ['toy'], 'grid': {'learning_rate': [0.01], "
        "'embed_dim': [24], 'ffn_dim': [64], 'heads': [8], 'seq_len': [32]}})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # the toy's rules are the Transformer's: 24 / 8 = 3 is an odd head dimension, rejected at parse time
    assert "(arch toy)" in proc.stderr and "head dimension" in proc.stderr, proc.stderr[-2000:]
    ok = code.replace("'embed_dim': [24]", "'embed_dim': [32]").replace("'heads': [8]", "'heads': [2]")
    ok += "; assert 'torch' not in sys.modules and list(ARCHS)[-1] == 'toy'"
    proc = subprocess.run([sys.executable, "-c", ok], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_plugins_own_setting_is_in_the_registry_and_reaches_the_model(plugin_env):
    """Its spec and schema fragment are in the registry (torch-free); the pipeline name builds into its
    config; its own rule refuses a bad value, naming the key."""
    spec = _run(
        "import sys; from archbench.models.registry import ARCHS; import toyarch; a = ARCHS['toy']; "
        "assert a is toyarch.ARCH and a.check() is toyarch.check; "
        "assert a.schema_fragment == {'toy_gain': {'type': 'number', 'minimum': 0, 'default': 1.0, "
        "'description': \"The toy's own setting.\"}}; "
        "assert 'torch' not in sys.modules; print('ok')"
    )
    assert spec.stdout.strip() == "ok", spec.stderr[-2000:]
    model = _run(
        "from archbench.models import build_model, make_config; from archbench.models.sizing import config_fields; "
        "hp = dict(vocab_size=40, embed_dim=32, ffn_dim=48, heads=2, layers=1, max_seq_len=16); "
        "m = build_model('toy', toy_gain=2.5, **hp); assert m.config.toy_gain == 2.5, m.config; "
        "assert m.get_params()['toy_gain'] == 2.5 and 'toy_gain' in config_fields('toy'); "
        "assert not hasattr(build_model('transformer', toy_gain=2.5, **hp).config, 'toy_gain'); "
        "make_config('toy', toy_gain=11, **hp)"
    )
    assert "toy_gain must be <= 10, got 11" in model.stderr, model.stderr[-2000:]


def test_the_config_accepts_the_plugins_own_setting_and_refuses_a_bad_value(plugin_env):
    base = (
        "from archbench.config import validate_config; "
        "cfg = {'archs': ['toy'], 'grid': {'learning_rate': [0.01], 'embed_dim': [32], 'ffn_dim': [64], "
        "'heads': [2], 'seq_len': [32]}, 'model': {'toy_gain': GAIN}}; "
    )
    ok = _run(base.replace("GAIN", "2.5") + "print(validate_config(cfg)['model']['toy_gain'])")
    assert ok.returncode == 0 and ok.stdout.strip() == "2.5", ok.stderr[-2000:]
    schema = _run(base.replace("GAIN", "-1") + "validate_config(cfg)")  # the fragment's minimum
    assert schema.returncode != 0 and "model.toy_gain" in schema.stderr, schema.stderr[-2000:]
    rule = _run(base.replace("GAIN", "11") + "validate_config(cfg)")  # the plugin's own check
    assert rule.returncode != 0 and "toy_gain must be <= 10" in rule.stderr, rule.stderr[-2000:]
