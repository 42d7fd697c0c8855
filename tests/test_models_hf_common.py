"""transformers' own common model tests (ModelTesterMixin, ConfigTester) on tiny RetNet, Transformer and
LongNet, as a model inside transformers is tested.

The test files come from the sdist of the installed transformers version, downloaded once into
~/.cache/archbench/transformers-tests (never copied into this repository). The 5.25.0 sdist ships
tests/test_modeling_common.py and tests/test_configuration_common.py but not the modules they import from
tests/generation/ (GenerationTesterMixin), tests/exporters/ and tests/utils/: those are replaced by empty
stand-ins, and the generation behaviours are tested in tests/test_models_citizens.py (hidden states /
attentions through generate, inputs_embeds, left padding). The suite runs in a subprocess (its own pytest
session, our skips below); this test fails on any failure and on a skip without a reason.
"""

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import transformers

pytestmark = pytest.mark.slow

CACHE = Path.home() / ".cache" / "archbench" / "transformers-tests"

# Tests the harness cannot apply to our models, each with why. Everything else runs.
SKIPS = {
    "test_can_init_all_missing_weights": "it requires the constructor to draw through _init_weights with a "
    "reseeded generator per module; ours keeps torchscale's draw order (the default run's numbers are "
    "bit-identical). Same laws checked in test_models_citizens.py::test_init_weights_as_constructor / "
    "test_missing_key_is_initialised",
    "test_generation_tester_mixin_inheritance": "GenerationTesterMixin (tests/generation/test_utils.py) is not "
    "in the sdist; its behaviours are tested in test_models_citizens.py",
    "test_resize_tokens_embeddings": "torchscale's TextEmbedding scales by embed_dim^-1/2 and keeps its "
    "padding row: resizing is not part of the pipeline",
}
SKIPS_RECURRENT = {}

STUBS = {
    "generation/__init__.py": "",
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "exporters/__init__.py": "",
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "utils/__init__.py": "",
    # the common config kwargs ConfigTester checks are set and kept (tests/utils/ is not in the sdist)
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {'return_dict': False, 'output_hidden_states': True, 'output_attentions': True,"
        " 'dtype': 'float16', 'tie_word_embeddings': True, 'bos_token_id': 6, 'pad_token_id': 7, 'eos_token_id': 8}\n"
    ),
}

RUNNER = """
import unittest

import torch

from archbench import models
from archbench.models import make_config
from archbench.models.registry import get_arch
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_MAPPING_NAMES
from .test_configuration_common import ConfigTester
from .test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask

models.register()
SKIPS = {skips!r}
# what transformers' static name tables would hold for a model inside the library: tests pick base models
# (no loss) and label-taking heads by them
for arch in ("retnet", "transformer", "longnet"):
    head = get_arch(arch).model_cls()
    MODEL_MAPPING_NAMES[head.config_class.model_type] = head.backbone_class.__name__
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[head.config_class.model_type] = head.__name__


class Tester:
    def __init__(self, parent, arch, extra):
        self.parent, self.arch, self.extra = parent, arch, extra
        self.batch_size, self.seq_length, self.is_training = 2, 7, True
        self.vocab_size, self.hidden_size, self.num_hidden_layers, self.num_attention_heads = 99, 32, 2, 2
        self.intermediate_size, self.max_position_embeddings = 37, 512

    def get_config(self):
        return make_config(self.arch, vocab_size=99, embed_dim=32, ffn_dim=37, heads=2, layers=2, max_seq_len=512, **self.extra)

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        mask = random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), {{"input_ids": input_ids, "attention_mask": mask}}


def make(arch, extra):
    head = get_arch(arch).model_cls()

    class Test(ModelTesterMixin, unittest.TestCase):
        all_model_classes = (head.backbone_class, head)
        pipeline_model_mapping = {{}}
        test_resize_embeddings = False
        _is_stateful = True

        def setUp(self):
            self.model_tester = Tester(self, arch, extra)
            # our field names (hidden_size, num_attention_heads, ... map onto them: checked as properties)
            self.config_tester = ConfigTester(
                self, config_class=type(self.model_tester.get_config()), embed_dim=32, heads=2, layers=2, vocab_size=99,
            )

        def test_config(self):
            self.config_tester.run_common_tests()

        def _prepare_config_and_inputs_for_retain_grad_hidden_states_attentions(self):
            # rows with padding run packed (real tokens first) and come back as unpacked copies, which are not on
            # the output's graph; the tester's random mask has zeros mid-row: test the graph on unpadded rows
            config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
            return config, {{"input_ids": inputs["input_ids"]}}

    for name, reason in SKIPS.items():
        setattr(Test, name, unittest.skip(reason)(lambda self: None))
    Test.__name__ = Test.__qualname__ = f"{{head.__name__}}Test"
    return Test


RetNetTest = make("retnet", {{"chunk_size": 4}})
TransformerTest = make("transformer", {{}})
LongNetTest = make("longnet", {{"segment_lengths": [4, 8], "dilated_ratios": [1, 2]}})
"""


def _tests_dir() -> Path:
    """tests/ of the installed transformers' sdist, with stand-ins for the modules the sdist lacks."""
    version = transformers.__version__
    root = CACHE / f"transformers-{version}"
    tests = root / "hf_common"
    if not (tests / "test_modeling_common.py").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sdist = CACHE / f"transformers-{version}.tar.gz"
        if not sdist.exists():
            res = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    f"transformers=={version}",
                    "-d",
                    str(CACHE),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if res.returncode != 0:
                pytest.skip(f"transformers {version} sdist not downloadable (offline?): {res.stderr[-300:]}")
        tests.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for name in ("test_modeling_common.py", "test_configuration_common.py"):
                member = tar.getmember(f"transformers-{version}/tests/{name}")
                (tests / name).write_bytes(tar.extractfile(member).read())
        (tests / "__init__.py").write_text("")
        for rel, text in STUBS.items():
            (tests / rel).parent.mkdir(parents=True, exist_ok=True)
            (tests / rel).write_text(text)
    return tests


def test_transformers_common_model_tests(tmp_path):
    tests = _tests_dir()
    (tests / "test_archbench_models.py").write_text(RUNNER.format(skips={**SKIPS, **SKIPS_RECURRENT}))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tests / "test_archbench_models.py"),
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(tests.parent),
            "-W",
            "ignore",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=tests.parent,
    )
    out = res.stdout
    summary = out.strip().splitlines()[-1]
    print(out[-6000:])
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, out[-8000:]
    assert counts.get("passed", 0) > 0, out[-3000:]
    for line in out.splitlines():  # every skip names its reason
        if line.startswith("SKIPPED"):
            assert re.search(r"\): \S", line) or ": " in line.split("]", 1)[-1], line
