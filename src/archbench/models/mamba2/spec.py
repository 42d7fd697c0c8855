"""The torch-free spec of ``mamba2`` (its package's docstring says what it is): checks, parameters, FLOPs,
description and its schema fragment; :mod:`.modeling` imports from here, the package adds its registry entry."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ..constraints import ConstraintError
from ..hybrid import attention_layers, pattern
from ..spec import StockSettings, dense, padded, softmax_attention

# transformers' NemotronH layer types of the two mixers a hybrid holds
MAMBA, ATTENTION = "linear_attention", "full_attention"


def attention_indices(s: dict) -> list[int]:
    """The attention layers (0-based) of resolved settings; [] for the pure Mamba-2."""
    return attention_layers(s["layers"], s.get("attention_every") or 0, s.get("attention_layers") or None)


def check(s: dict) -> None:
    """Cross-key rules (torch-free): positive sizes, and the inner width ssm_expand x embed_dim splits
    into whole SSM heads."""
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
    layers = s.get("layers") or Mamba2Settings.layers
    try:
        attn = attention_layers(layers, s.get("attention_every") or 0, s.get("attention_layers") or None)
    except ValueError as err:
        raise ConstraintError(["attention_every", "attention_layers"], str(err)) from None
    if attn:
        if s["embed_dim"] % s["heads"]:
            raise ConstraintError(
                ["embed_dim", "heads", "attention_every"],
                f"a hybrid's attention layers split embed_dim {s['embed_dim']} into heads {s['heads']}: not divisible",
            )
        if s.get("tie_word_embeddings"):
            raise ConstraintError(
                ["tie_word_embeddings", "attention_every"],
                "a Mamba-2 hybrid (transformers' NemotronH) cannot tie its input and output embeddings",
            )


DESCRIPTION = {"mixer": "Mamba-2 state-space scan", "block": "Mamba-2 block (gated mixer, no FFN)"}


def describe(settings: dict | None = None) -> dict:
    """The pure model's words; a hybrid names its attention layers and their pattern (M = Mamba-2)."""
    s = settings or {}
    attn = attention_indices(s) if s.get("layers") else []
    if not attn:
        return dict(DESCRIPTION)
    layers = s["layers"]
    letters = pattern(layers, s.get("attention_every") or 0, s.get("attention_layers") or None, mixer="M")
    return {
        "mixer": f"Mamba-2 state-space scan and softmax attention without positions, layers {letters} "
        f"({len(attn)} of {layers} attention)",
        "block": DESCRIPTION["block"],
    }


def geometry(s: dict) -> dict:
    """Inner width, SSM heads and head width of resolved settings (as :meth:`Mamba2Settings.to_hf`)."""
    inner = (s.get("ssm_expand") or 2) * s["embed_dim"]
    heads = inner // s["ssm_head_dim"] if s.get("ssm_head_dim") else s["heads"]
    return {"inner": inner, "heads": heads, "head_dim": inner // heads}


def params(s: dict, include_embeddings: bool = True) -> int:
    """Closed-form parameter count (resolved settings; one group of B/C, transformers' defaults: no
    projection biases, a biased depthwise convolution). Per Mamba-2 layer: in_proj D x (2 I + 2 N + H),
    the convolution over I + 2 N channels, dt_bias / A_log / D per head, the gated RMSNorm (I), out_proj
    I x D, the block's RMSNorm (D). Per attention layer of a hybrid: q, k, v, o, D x D each (as many
    key / value heads as heads, no biases), the block's RMSNorm (D). Then a final RMSNorm."""
    D, L, N = s["embed_dim"], s["layers"], s["ssm_state_size"]
    g = geometry(s)
    inner, H = g["inner"], g["heads"]
    conv = inner + 2 * N
    per_layer = D * (inner + conv + H) + conv * (s["ssm_conv_kernel"] + 1) + 3 * H + inner + inner * D + D
    A = len(attention_indices(s))
    n = (L - A) * per_layer + A * (4 * D * D + D) + D
    if include_embeddings:
        n += s["vocab_size"] * D * (1 if s.get("tie_word_embeddings") else 2)
    return n


def state_bytes(s: dict, context: int, batch: int = 1, bytes_per_value: int = 4) -> int:
    """Decoding state after ``context`` tokens (resolved settings): per Mamba-2 layer the convolution
    window ((I + 2 N) channels x kernel taps) and the SSM state (H x P x N), whatever the context; per
    attention layer of a hybrid the key / value cache, 2 x context x embed_dim. In ``bytes_per_value``
    (fp32: 4), what :func:`archbench.models.cache.cache_nbytes` counts on an fp32 model's cache."""
    D, N, K = s["embed_dim"], s["ssm_state_size"], s["ssm_conv_kernel"]
    g = geometry(s)
    A = len(attention_indices(s))
    mamba = (g["inner"] + 2 * N) * K + g["heads"] * g["head_dim"] * N
    return batch * bytes_per_value * ((s["layers"] - A) * mamba + A * 2 * context * D)


@dataclasses.dataclass
class Mamba2Settings(StockSettings):
    """Pipeline names for a stock ``Mamba2Config``.

    Inner width = ssm_expand x embed_dim, split into SSM heads of ``ssm_head_dim`` channels
    (null: ``heads`` heads of ssm_expand x embed_dim / heads channels). ``ssm_state_size`` is the
    state per head channel (N); parameter matching turns it (the inner width only moves in steps of
    embed_dim, too coarse to match within 2% at small sizes). ``max_seq_len`` has no effect on the
    model (no positions); it is stored as ``max_position_embeddings`` for evaluation context limits.
    ``ffn_dim`` and ``dropout`` do not apply (Mamba-2 blocks have no FFN and no dropout).
    ``attention_every`` / ``attention_layers`` make a hybrid (the module docstring): a stock
    ``NemotronHConfig`` instead of a ``Mamba2Config``.
    """

    model_type: ClassVar[str] = "mamba2"
    check_settings: ClassVar = staticmethod(check)

    ssm_state_size: int = 16
    ssm_expand: int = 2
    ssm_head_dim: int | None = None
    ssm_chunk_size: int = 256
    ssm_conv_kernel: int = 4
    attention_every: int = 0
    attention_layers: list[int] | None = None

    def num_heads(self) -> int:
        return geometry(dataclasses.asdict(self))["heads"]

    def attention(self) -> list[int]:
        """The attention layers' indices ([] for the pure Mamba-2)."""
        return attention_indices(dataclasses.asdict(self))

    def to_hf(self):
        """A stock ``Mamba2Config``; a hybrid's stock ``NemotronHConfig`` (the module docstring)."""
        from transformers import Mamba2Config

        heads = self.num_heads()
        attn = self.attention()
        if attn:
            return self._hybrid(attn)
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
            **self.special_tokens(),
            max_position_embeddings=self.max_seq_len,
        )

    def _hybrid(self, attn: list[int]):
        from transformers import NemotronHConfig

        heads = self.num_heads()
        config = NemotronHConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.embed_dim,
            layers_block_type=[ATTENTION if i in attn else MAMBA for i in range(self.layers)],
            # attention: Llama's geometry (as many key / value heads as heads, no biases)
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            head_dim=self.embed_dim // self.heads,
            attention_bias=False,
            # Mamba-2 layers: Mamba2Config's settings and defaults, as to_hf gives the pure model
            mamba_num_heads=heads,
            mamba_head_dim=self.ssm_expand * self.embed_dim // heads,
            expand=self.ssm_expand,
            ssm_state_size=self.ssm_state_size,
            chunk_size=self.ssm_chunk_size,
            conv_kernel=self.ssm_conv_kernel,
            n_groups=1,
            layer_norm_epsilon=1e-5,
            # no MLP / MoE layers: their sizes are never read
            initializer_range=0.02,  # the attention layers' init (Llama's); the rest is copied by build()
            rescale_prenorm_residual=False,
            use_bias=False,
            tie_word_embeddings=False,
            **self.special_tokens(),
            max_position_embeddings=self.max_seq_len,
        )
        config.archbench_arch = "mamba2"  # evaluation's arch_of; an extra key stock loading keeps
        return config


def flops(s: dict, device_type: str = "cpu") -> float:
    """The SSD scan per Mamba-2 layer, softmax attention per attention layer of a hybrid
    (:mod:`archbench.models.flops`)."""
    T, N, Q = s["seq_len"], s["ssm_state_size"], s["ssm_chunk_size"]
    g = geometry(s)
    inner, h = g["inner"], g["heads"]
    c, length = padded(T, Q)
    scan = length * (2 * Q * (N * h + inner) + 4 * N * inner) + 2 * (c + 1) ** 2 * inner * N
    attn = len(attention_indices(s))
    per_layer_attention = softmax_attention(s) / s["layers"]
    return (
        dense(s, params(s, include_embeddings=False)) + 3 * scan / T * (s["layers"] - attn) + per_layer_attention * attn
    )


SCHEMA_FRAGMENT = {
    "ssm_state_size": {
        "type": "integer",
        "minimum": 1,
        "default": 16,
        "description": "Mamba-2 SSM state size N per head channel (the width knob turned by model.match_params).",
    },
    "ssm_expand": {
        "type": "integer",
        "minimum": 1,
        "default": 2,
        "description": "Mamba-2 inner width = ssm_expand x embed_dim.",
    },
    "ssm_head_dim": {
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
        "description": "Mamba-2 channels per SSM head; null = ssm_expand x embed_dim / heads (mamba2 then has "
        "`heads` SSM heads); when set, mamba2 has ssm_expand x embed_dim / ssm_head_dim heads and ignores `heads`.",
    },
    "ssm_chunk_size": {
        "type": "integer",
        "minimum": 1,
        "default": 256,
        "description": "Mamba-2 chunk length of the chunked (SSD) scan in training / prefill. Named apart from "
        "`chunk_size`, which is RetNet's chunkwise-retention chunk.",
    },
}
