"""Hugging Face-native language models on torchscale 0.3.0 (RetNet, Transformer, LongNet, ...).

Importing this package is cheap: it imports neither torch nor transformers. The names below
(``RetNetForCausalLM``, ``build_model``, ...) are loaded on first access (PEP 562), and
:func:`register` — called by every code path that builds or loads a model — registers each entry of
:mod:`archbench.models.registry` with ``AutoConfig`` / ``AutoModelForCausalLM`` (and its backbone, the
head's ``backbone_class``, with ``AutoModel``). ``save_pretrained`` of archbench's own models also copies
their modeling code (:func:`archbench.models.common.remote_code_files`), so ``trust_remote_code=True``
loading works without archbench installed.

Layout: one folder per architecture, ``models/<name>/``: ``__init__.py`` its torch-free spec (settings
checks, closed-form parameters and FLOPs, description, schema fragment, the registry entry ``ARCH``),
``modeling.py`` its torch code. Shared: :mod:`.spec` (the entry class, the stock settings' base, shared
formulas), :mod:`.constraints`, :mod:`.hybrid` (torch-free), :mod:`.common`, :mod:`.hybrid_attention`
(modeling).
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it (loaded on first attribute access)
_LAZY = {
    "ArchbenchConfig": "common",
    "ArchbenchPreTrainedModel": "common",
    "ArchbenchModel": "common",
    "ArchbenchForCausalLM": "common",
    "DecodeCache": "common",
    "lm_loss": "common",
    "LongNetConfig": "longnet.modeling",
    "LongNetForCausalLM": "longnet.modeling",
    "LongNetModel": "longnet.modeling",
    "LongNetModelHF": "longnet.modeling",
    "RetNetConfig": "retnet.modeling",
    "RetNetForCausalLM": "retnet.modeling",
    "RetNetModel": "retnet.modeling",
    "RetNetModelHF": "retnet.modeling",
    "TransformerConfig": "transformer.modeling",
    "TransformerForCausalLM": "transformer.modeling",
    "TransformerModel": "transformer.modeling",
    "TransformerModelHF": "transformer.modeling",
    "analytic_parameters": "sizing",
    "build_model": "sizing",
    "count_parameters": "spec",
    "make_config": "sizing",
    "match_ffn_dim": "matching",
    "ARCHS": "registry",
    "get_arch": "registry",
    "arch_names": "registry",
    "register_arch": "registry",
}

_registered: set[str] = set()


def register() -> None:
    """Register every architecture in the registry with transformers' Auto* factories.

    Idempotent and cheap after the first call; architectures added to the registry later (a plugin
    module, a test's toy architecture) are registered by the next call.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from .registry import ARCHS

    for name, arch in ARCHS.items():
        if name in _registered:
            continue
        cfg, model = arch.config_cls(), arch.model_cls()
        if getattr(cfg, "stock", False):  # a stock transformers model (llama, mamba2): already registered
            _registered.add(name)
            continue
        AutoConfig.register(cfg.model_type, cfg, exist_ok=True)
        AutoModelForCausalLM.register(cfg, model, exist_ok=True)
        backbone = getattr(model, "backbone_class", None)
        # archbench's own architectures: the backbone under the head. A plugin head that subclasses ours
        # with a config of its own inherits our backbone (another config class): AutoModel would refuse it
        if backbone is not None and backbone.config_class is cfg:
            AutoModel.register(cfg, backbone, exist_ok=True)
        _registered.add(name)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})


__all__ = ["register", *_LAZY]
