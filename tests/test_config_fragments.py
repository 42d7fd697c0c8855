"""The schema is composed: the package's base schema plus the `schema_fragment` of every registered
architecture (into `model`), data source (into `data.<name>`) and evaluation (into its section), plugins
included. A fragment's key gets its default, a bad value is refused naming the key, and a key defined
twice is refused naming both owners."""

import dataclasses
import os
import subprocess
import sys

import pytest

from archbench.config import SCHEMA_PATH, grid_points, load_schema, schema_defaults, validate_config
from archbench.data.sources import SOURCES, DataSource, register_source
from archbench.errors import ConfigError
from archbench.evaluation.registry import EVALUATIONS, Evaluation, register_evaluation
from archbench.models.registry import ARCHS, Arch, get_arch, register_arch

GRID = {"learning_rate": [1.0e-3], "embed_dim": [64], "ffn_dim": [128], "heads": [2], "seq_len": [64]}
KNOB = {"type": "integer", "minimum": 1, "default": 3, "description": "a setting of the test's own"}


# The entries as a component declares them (until every registry's entry class has the field itself).
class KnobSource(DataSource):
    name = "knobsource"
    schema_fragment = {"knob": KNOB}


@dataclasses.dataclass(frozen=True)
class FragmentArch(Arch):
    schema_fragment: dict | None = None


@dataclasses.dataclass(frozen=True)
class FragmentEvaluation(Evaluation):
    schema_fragment: dict | None = None
    schema_section: str | None = None


@pytest.fixture
def registered():
    """Register entries for one test and remove them afterwards (the registries are process-wide)."""
    added = []

    def add(entry):
        if isinstance(entry, DataSource):
            register_source(entry)
            added.append((SOURCES, entry.name))
        elif isinstance(entry, Arch):
            register_arch(entry)
            added.append((ARCHS, entry.name))
        else:
            register_evaluation(entry)
            added.append((EVALUATIONS, entry.name))
        return entry

    yield add
    for registry, name in added:
        dict.pop(registry, name)


def arch(name, fragment):
    return FragmentArch(**{**dataclasses.asdict(get_arch("retnet")), "name": name, "schema_fragment": fragment})


def evaluation(name, fragment, section=None):
    return FragmentEvaluation(
        name, "m:f", "m:args", {"json": f"{name}.json"}, help="test", schema_fragment=fragment, schema_section=section
    )


def test_the_base_schema_ships_inside_the_package():
    import archbench

    assert SCHEMA_PATH.parent.samefile(os.path.dirname(archbench.__file__))
    assert SCHEMA_PATH.name == "schema.yaml" and SCHEMA_PATH.is_file()


def test_a_data_source_fragment_is_data_name_with_defaults_filled_and_values_checked(registered):
    registered(KnobSource())
    assert load_schema()["properties"]["data"]["properties"]["knobsource"]["properties"]["knob"] == KNOB
    assert validate_config({"grid": GRID})["data"]["knobsource"] == {"knob": 3}
    assert validate_config({"grid": GRID, "data": {"knobsource": {"knob": 7}}})["data"]["knobsource"]["knob"] == 7
    with pytest.raises(ConfigError, match=r"^config key 'data.knobsource.knob': 0 is less than the minimum of 1$"):
        validate_config({"grid": GRID, "data": {"knobsource": {"knob": 0}}})
    with pytest.raises(ConfigError, match=r"^config key 'data.knobsource.nob': unknown key \(allowed here: knob\)$"):
        validate_config({"grid": GRID, "data": {"knobsource": {"nob": 1}}})
    # --config strings are read by the fragment's types too
    cfg = validate_config(
        {"grid": GRID, "data": {"knobsource": {"knob": "5"}}}, overrides={"data": {"knobsource": {"knob": "5"}}}
    )
    assert cfg["data"]["knobsource"]["knob"] == 5


def test_an_architecture_fragment_is_a_model_setting_the_grid_may_search(registered):
    registered(arch("knobarch", {"knob_size": KNOB}))
    assert validate_config({"grid": GRID})["model"]["knob_size"] == 3
    cfg = validate_config({"grid": {**GRID, "knob_size": [2, 4]}})
    assert [p["knob_size"] for p in grid_points(cfg)] == [2, 4]
    with pytest.raises(ConfigError, match=r"^config key 'model.knob_size': 'big' is not of type 'integer'$"):
        validate_config({"grid": GRID, "model": {"knob_size": "big"}})
    with pytest.raises(ConfigError, match=r"^config key 'grid.knob_size\[1\]': 0 is less than the minimum of 1$"):
        validate_config({"grid": {**GRID, "knob_size": [2, 0]}})


def test_an_evaluation_fragment_joins_its_section_or_makes_its_own(registered):
    registered(evaluation("knobeval", {"knob": KNOB}))  # a new section named after the evaluation
    registered(evaluation("knobeval2", {"knob_trials": KNOB}, section="latency"))  # an existing one
    cfg = validate_config({"grid": GRID})
    assert cfg["knobeval"] == {"knob": 3} and cfg["latency"]["knob_trials"] == 3
    assert cfg["latency"]["trials"] == 3  # the base keys of the section are still there
    assert schema_defaults()["knobeval"] == {"knob": 3}  # the CLI's starting config has them too
    with pytest.raises(ConfigError, match=r"^config key 'latency.knob_trials': -2 is less than the minimum of 1$"):
        validate_config({"grid": GRID, "latency": {"knob_trials": -2}})


def test_a_key_defined_twice_names_both_owners(registered):
    registered(arch("knobarch", {"knob_size": KNOB}))
    registered(arch("otherarch", {"knob_size": {**KNOB, "default": 4}}))
    with pytest.raises(
        ConfigError,
        match=r"^config key 'model.knob_size': defined by both architecture 'knobarch' and architecture 'otherarch'$",
    ):
        load_schema()


def test_entries_that_share_one_definition_define_it_once(registered):
    shared = {"knob_size": KNOB}
    registered(arch("knobarch", shared))
    registered(arch("otherarch", {"knob_size": shared["knob_size"]}))  # the same schema object
    assert load_schema()["properties"]["model"]["properties"]["knob_size"] == KNOB
    registered(arch("thirdarch", {"knob_size": dict(KNOB)}))  # an equal copy is a second definition
    with pytest.raises(ConfigError, match=r"defined by both architecture 'knobarch' and architecture 'thirdarch'$"):
        load_schema()


def test_a_fragment_may_not_redefine_a_base_key(registered):
    registered(evaluation("knobeval", {"trials": KNOB}, section="latency"))
    with pytest.raises(
        ConfigError,
        match=r"^config key 'latency.trials': defined by both the base schema \(schema.yaml\) and evaluation 'knobeval'$",
    ):
        validate_config({"grid": GRID})


def test_a_fragment_is_a_mapping_of_key_schemas(registered):
    registered(arch("knobarch", {"knob_size": 3}))
    with pytest.raises(ConfigError, match=r"^architecture 'knobarch': schema_fragment must map each key"):
        load_schema()


PLUGIN = """
from archbench.data.sources import DataSource


class PluginSource(DataSource):
    name = "pluginsource"
    schema_fragment = {"depth": {"type": "integer", "minimum": 1, "default": 2}}
"""


def test_a_plugin_source_installed_through_its_entry_point_contributes_its_fragment(tmp_path):
    files = {
        "pluginsource.py": PLUGIN,
        "pluginsource-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: pluginsource\nVersion: 0.1\n",
        "pluginsource-0.1.dist-info/entry_points.txt": "[archbench.sources]\np = pluginsource:PluginSource\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    code = (
        "from archbench.config import validate_config\n"
        f"grid = {GRID!r}\n"
        "print(validate_config({'grid': grid})['data']['pluginsource'])\n"
        "try:\n"
        "    validate_config({'grid': grid, 'data': {'pluginsource': {'depth': 0}}})\n"
        "except Exception as err:\n"
        "    print(err)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "{'depth': 2}",
        "config key 'data.pluginsource.depth': 0 is less than the minimum of 1",
    ]
