"""archbench: train and compare RetNet, Transformer and LongNet language models.

Importing the package registers the model classes with transformers' Auto* factories, so
``AutoModelForCausalLM.from_pretrained(dir)`` works on any saved run. The registration needs torch,
transformers and torchscale (seconds to import), which most jobs never use (the Snakefile parse, the
data and report stages): it runs as soon as ``transformers`` is imported, or at once if it already is.
Nothing can observe the registration without importing transformers first, so both orders work.
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def _register_models() -> None:
    from archbench import models  # noqa: F401  (AutoConfig / AutoModelForCausalLM registration)


class _RegisterAfterTransformers(importlib.abc.MetaPathFinder):
    """Wraps the loader of ``transformers`` so the models register right after it is imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "transformers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _register_models()

            spec.loader.exec_module = exec_module
        return spec


if "transformers" in sys.modules:
    _register_models()
elif not any(isinstance(f, _RegisterAfterTransformers) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTransformers())
