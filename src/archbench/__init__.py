"""archbench: train and compare language-model architectures (models/registry.py) at matched size.

Importing the package is cheap (no torch, no transformers). Code that builds or loads models calls
:func:`archbench.models.register` first, which registers every architecture of
:mod:`archbench.models.registry` with transformers' ``AutoConfig`` / ``AutoModelForCausalLM``.
"""

__version__ = "0.1.0"
