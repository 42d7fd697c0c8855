"""``llama``: the Llama recipe ("Transformer++": RoPE, SwiGLU, RMSNorm, no biases) as transformers'
stock ``LlamaForCausalLM`` — wrapped, not copied.

:class:`LlamaSettings` takes the pipeline's names (embed_dim, ffn_dim, heads, layers, dropout,
max_seq_len, vocab_size) and :meth:`LlamaSettings.to_hf` returns a stock ``LlamaConfig``, so a
saved run has ``model_type: llama`` and loads with ``AutoModelForCausalLM.from_pretrained`` and
no ``trust_remote_code``. Attention: SDPA on CPU; flash-attn 2 on CUDA when it is importable
(the ``[gpu]`` extra). Decoding uses transformers' own KV cache (``DynamicCache``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from typing import ClassVar

from ..constraints import common
from ..spec import Arch, StockSettings, dense, softmax_attention

DESCRIPTION = {"mixer": "softmax attention with RoPE", "block": "Llama block (SwiGLU FFN, RMSNorm, no biases)"}


def describe(settings: dict | None = None) -> dict:
    return dict(DESCRIPTION)


def params(s: dict, include_embeddings: bool = True) -> int:
    """Closed-form parameter count (resolved settings): q, k, v, o bias-free (as many KV heads as
    heads), a SwiGLU FFN (gate, up, down), two RMSNorm weights per layer, a final RMSNorm."""
    D, F, L = s["embed_dim"], s["ffn_dim"], s["layers"]
    n = L * (4 * D * D + 3 * D * F + 2 * D) + D
    if include_embeddings:
        n += s["vocab_size"] * D * (1 if s.get("tie_word_embeddings") else 2)
    return n


def check(settings: dict) -> None:
    """Cross-key rules (torch-free): positive sizes, heads dividing embed_dim into an even head
    dimension (RoPE rotates pairs), dropout in [0, 1)."""
    common(settings)


def flops(s: dict, device_type: str = "cpu") -> float:
    return dense(s, params(s, include_embeddings=False)) + softmax_attention(s)


@dataclasses.dataclass
class LlamaSettings(StockSettings):
    """Pipeline names for a stock ``LlamaConfig`` (ffn_dim is SwiGLU's intermediate size; dropout goes to
    attention, the only dropout Llama has)."""

    model_type: ClassVar[str] = "llama"  # the saved config's type: a stock transformers class
    check_settings: ClassVar = staticmethod(check)

    ffn_dim: int = 1376
    dropout: float = 0.0

    def to_hf(self):
        """The stock config. Attention: flash-attn 2 when CUDA and flash-attn are there (it needs
        bf16 / fp16 activations: train with a bf16 / 16-mixed precision), else SDPA; the choice is not
        saved, so a loaded model picks again on its own machine."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.embed_dim,
            intermediate_size=self.ffn_dim,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            num_hidden_layers=self.layers,
            max_position_embeddings=self.max_seq_len,
            attention_dropout=self.dropout,
            tie_word_embeddings=self.tie_word_embeddings,
            **self.special_tokens(),
            attention_bias=False,
            mlp_bias=False,
            hidden_act="silu",
            attn_implementation=attn_implementation(),
        )


@functools.cache
def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def attn_implementation() -> str:
    """flash_attention_2 when CUDA is available and flash-attn is installed, else PyTorch SDPA."""
    import torch

    return "flash_attention_2" if torch.cuda.is_available() and flash_attn_available() else "sdpa"


def _model_class():
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM


ARCH = Arch(
    "llama",
    lambda: LlamaSettings,
    _model_class,
    state="kv_cache",
    width_knob="ffn_dim",
    color="tab:red",
    display="Transformer++ (Llama)",
    constraints=check,
    params=params,
    flops=flops,
    describe=describe,
    beyond_context="rope",
)
