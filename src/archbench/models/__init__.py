"""Hugging Face-native RetNet, Transformer and LongNet language models on torchscale 0.3.0.

Importing this package registers the three config/model pairs with ``AutoConfig`` and
``AutoModelForCausalLM`` and marks them for ``register_for_auto_class`` so that
``save_pretrained`` also copies the modeling code (``trust_remote_code=True`` loading works
without archbench installed, as long as torch, torchscale and transformers are).
"""

from transformers import AutoConfig, AutoModelForCausalLM

from .common import ArchbenchConfig, ArchbenchPreTrainedModel, DecodeCache
from .longnet import LongNetConfig, LongNetForCausalLM, LongNetModelHF
from .retnet import RetNetConfig, RetNetForCausalLM, RetNetModelHF
from .sizing import (ARCHS, CONFIG_CLASSES, MODEL_CLASSES, analytic_parameters, build_model,
                     count_parameters, make_config, match_ffn_dim)
from .transformer import TransformerConfig, TransformerForCausalLM, TransformerModelHF

for _arch in ARCHS:
    _cfg, _model = CONFIG_CLASSES[_arch], MODEL_CLASSES[_arch]
    AutoConfig.register(_cfg.model_type, _cfg, exist_ok=True)
    AutoModelForCausalLM.register(_cfg, _model, exist_ok=True)
    _cfg.register_for_auto_class()
    _model.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "ARCHS", "CONFIG_CLASSES", "MODEL_CLASSES", "ArchbenchConfig", "ArchbenchPreTrainedModel",
    "DecodeCache", "LongNetConfig", "LongNetForCausalLM", "LongNetModelHF", "RetNetConfig",
    "RetNetForCausalLM", "RetNetModelHF", "TransformerConfig", "TransformerForCausalLM",
    "TransformerModelHF", "analytic_parameters", "build_model", "count_parameters",
    "make_config", "match_ffn_dim",
]
