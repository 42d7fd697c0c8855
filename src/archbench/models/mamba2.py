"""``mamba2``: transformers' stock ``Mamba2ForCausalLM`` (state-space duality, chunked scan), wrapped.

:class:`Mamba2Settings` takes the pipeline's names plus Mamba-2's own ``ssm_*`` settings and
:meth:`Mamba2Settings.to_hf` returns a stock ``Mamba2Config``: a saved run has ``model_type:
mamba2`` and loads through ``AutoModelForCausalLM`` without ``trust_remote_code``. On CPU the
reference PyTorch path runs; on CUDA transformers uses the ``mamba_ssm`` / ``causal_conv1d``
kernels when they are installed (the ``[gpu]`` extra). Decoding carries an O(1) state per layer
(a short convolution window and the SSM state), whatever the context length.

Keys are prefixed ``ssm_`` so none means two things: RetNet's ``chunk_size`` is its chunkwise
retention chunk, Mamba-2's scan chunk is ``ssm_chunk_size``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from archbench.models.constraints import ConstraintError


def check(s: dict) -> None:
    """Cross-key rules (torch-free; models/constraints.py's pattern): positive sizes, and the inner
    width ssm_expand x embed_dim splits into whole SSM heads."""
    for key in ("vocab_size", "embed_dim", "heads", "layers", "max_seq_len", "ssm_state_size", "ssm_expand"):
        value = s.get(key)
        if value is not None and int(value) < 1:
            raise ConstraintError([key], f"{key} must be a positive integer, got {value!r}")
    inner = (s.get("ssm_expand") or 2) * s["embed_dim"]
    head_dim = s.get("ssm_head_dim")
    if head_dim:
        if inner % head_dim:
            raise ConstraintError(
                ["ssm_head_dim", "ssm_expand", "embed_dim"],
                f"ssm_head_dim {head_dim} must divide ssm_expand x embed_dim = {inner}",
            )
    elif inner % s["heads"]:
        raise ConstraintError(
            ["heads", "ssm_expand", "embed_dim"],
            f"heads {s['heads']} must divide ssm_expand x embed_dim = {inner} (or set ssm_head_dim)",
        )


DESCRIPTION = {"mixer": "Mamba-2 state-space scan", "block": "Mamba-2 block (gated mixer, no FFN)"}


def describe(settings: dict | None = None) -> dict:
    return dict(DESCRIPTION)


def geometry(s: dict) -> dict:
    """Inner width, SSM heads and head width of resolved settings (as :meth:`Mamba2Settings.to_hf`)."""
    inner = (s.get("ssm_expand") or 2) * s["embed_dim"]
    heads = inner // s["ssm_head_dim"] if s.get("ssm_head_dim") else s["heads"]
    return {"inner": inner, "heads": heads, "head_dim": inner // heads}


def params(s: dict, include_embeddings: bool = True) -> int:
    """Closed-form parameter count (resolved settings; one group of B/C, transformers' defaults: no
    projection biases, a biased depthwise convolution). Per layer: in_proj D x (2 I + 2 N + H), the
    convolution over I + 2 N channels, dt_bias / A_log / D per head, the gated RMSNorm (I), out_proj
    I x D, the block's RMSNorm (D); then a final RMSNorm."""
    D, L, N = s["embed_dim"], s["layers"], s["ssm_state_size"]
    g = geometry(s)
    inner, H = g["inner"], g["heads"]
    conv = inner + 2 * N
    per_layer = D * (inner + conv + H) + conv * (s["ssm_conv_kernel"] + 1) + 3 * H + inner + inner * D + D
    n = L * per_layer + D
    if include_embeddings:
        n += s["vocab_size"] * D * (1 if s.get("tie_word_embeddings") else 2)
    return n


@dataclasses.dataclass
class Mamba2Settings:
    """Pipeline names for a stock ``Mamba2Config``.

    Inner width = ssm_expand x embed_dim, split into SSM heads of ``ssm_head_dim`` channels
    (null: ``heads`` heads of ssm_expand x embed_dim / heads channels). ``ssm_state_size`` is the
    state per head channel (N); parameter matching turns it (the inner width only moves in steps of
    embed_dim, too coarse to match within 2% at small sizes). ``max_seq_len`` has no effect on the
    model (no positions); it is stored as ``max_position_embeddings`` for evaluation context limits.
    ``ffn_dim`` and ``dropout`` do not apply (Mamba-2 blocks have no FFN and no dropout).
    """

    model_type = "mamba2"
    stock = True
    check_settings: ClassVar = staticmethod(check)

    vocab_size: int = 32000
    embed_dim: int = 512
    heads: int = 8
    layers: int = 6
    max_seq_len: int = 1024
    ssm_state_size: int = 16
    ssm_expand: int = 2
    ssm_head_dim: int | None = None
    ssm_chunk_size: int = 256
    ssm_conv_kernel: int = 4
    tie_word_embeddings: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self):
        self.check_settings(dataclasses.asdict(self))

    def num_heads(self) -> int:
        return geometry(dataclasses.asdict(self))["heads"]

    def to_hf(self):
        from transformers import Mamba2Config

        heads = self.num_heads()
        return Mamba2Config(
            vocab_size=self.vocab_size,
            hidden_size=self.embed_dim,
            num_hidden_layers=self.layers,
            num_heads=heads,
            head_dim=self.ssm_expand * self.embed_dim // heads,
            expand=self.ssm_expand,
            state_size=self.ssm_state_size,
            chunk_size=self.ssm_chunk_size,
            conv_kernel=self.ssm_conv_kernel,
            n_groups=1,
            tie_word_embeddings=self.tie_word_embeddings,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            max_position_embeddings=self.max_seq_len,
        )
