"""The registry is the one list of architectures: the schema, the wildcard constraint, the report and
model construction all follow it."""

import re

import matplotlib.colors

from archbench.config import load_schema
from archbench.models.registry import ARCHS, STATES, Arch, get_arch, register_arch
from workflow_helpers import REPO


def test_every_entry_is_complete():
    for name, arch in ARCHS.items():
        assert arch.name == name and arch.state in STATES and arch.display
        assert matplotlib.colors.is_color_like(arch.color), name
        assert callable(arch.check()), name  # its cross-key rules, importable without torch


def test_schema_and_wildcard_constraint_follow_the_registry():
    schema = load_schema()["properties"]
    archs = schema["archs"]
    assert "enum" not in archs["items"]  # checked against the registry instead (plugins add names)
    assert set(archs["default"]) <= set(ARCHS)
    assert schema["report"]["properties"]["baseline"]["default"] in ARCHS
    assert "enum" not in schema["model"]["properties"]["match_to"]
    for name in ARCHS:
        assert re.search(rf"\b{name}\b", archs["description"]), name
    common = (REPO / "rules/common.smk").read_text()
    assert re.search(r'arch="\|"\.join\(arch_names\(\)\)', common)
    assert not re.search(r"\b(retnet|transformer|longnet)\b", common)  # no list of names in the rules


def test_register_arch_is_idempotent_and_refuses_a_conflicting_entry():
    entry = get_arch("retnet")
    assert register_arch(entry) is entry
    other = Arch(**{**entry.__dict__, "color": "black"})
    try:
        register_arch(other)
    except ValueError as err:
        assert "already registered" in str(err)
    else:
        raise AssertionError("a conflicting entry was accepted")
    assert get_arch("retnet") is entry


def test_each_built_in_architecture_is_its_folders_spec_with_real_objects():
    """An architecture is one folder: the registry entry is the spec's ``ARCH`` (functions and class
    loaders, no names to parse), and its schema fragment names settings its config class has."""
    import importlib

    from archbench.models.sizing import config_fields

    for name in ["retnet", "transformer", "longnet", "llama", "mamba2"]:
        spec = importlib.import_module(f"archbench.models.{name}")
        arch = ARCHS[name]
        assert arch is spec.ARCH and arch.check() is spec.check, name
        assert all(callable(f) for f in (arch.config_class, arch.model_class, arch.params, arch.flops, arch.describe))
        assert set(arch.schema_fragment or {}) <= config_fields(name), name
        for key, rule in (arch.schema_fragment or {}).items():
            assert "default" in rule and rule.get("description"), (name, key)
    fragments = [set(ARCHS[n].schema_fragment or {}) for n in ARCHS]
    assert sum(map(len, fragments)) == len(set().union(*fragments))  # no key owned twice
