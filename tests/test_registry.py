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
