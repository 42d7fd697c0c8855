"""archbench: train and compare RetNet, Transformer and LongNet language models.

Importing the package registers the model classes with transformers' Auto* factories,
so ``AutoModelForCausalLM.from_pretrained(dir)`` works on any saved run.
"""

__version__ = "0.1.0"

from archbench import models  # noqa: E402,F401  (registers AutoConfig / AutoModelForCausalLM)
