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

from archbench.models.constraints import common

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
    """Cross-key rules (torch-free; models/constraints.py's pattern): positive sizes, heads dividing
    embed_dim into an even head dimension (RoPE rotates pairs), dropout in [0, 1)."""
    common(settings)


@dataclasses.dataclass
class LlamaSettings:
    """Pipeline names for a stock ``LlamaConfig`` (ffn_dim is SwiGLU's intermediate size; dropout goes to
    attention, the only dropout Llama has)."""

    model_type = "llama"  # the saved config's type: a stock transformers class, never re-registered
    stock = True
    check_settings: ClassVar = staticmethod(check)

    vocab_size: int = 32000
    embed_dim: int = 512
    ffn_dim: int = 1376
    heads: int = 8
    layers: int = 6
    dropout: float = 0.0
    max_seq_len: int = 1024
    tie_word_embeddings: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self):
        self.check_settings(dataclasses.asdict(self))

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
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
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
