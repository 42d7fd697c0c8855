"""Hugging Face plumbing shared by archbench's own architectures (RetNet, Transformer, LongNet).

Everything here is architecture-agnostic: the config base class, the decoding cache, the
``forward`` contract (left padding, labels loss, ``logits_to_keep``) and the attention kernels.
This module must only use relative imports inside ``models/`` so that ``save_pretrained`` can copy
it next to the weights for ``trust_remote_code=True`` loading.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .constraints import common as check_common  # `from .x import` form: save_pretrained copies .x

HPARAMS = ("vocab_size", "embed_dim", "ffn_dim", "heads", "layers", "dropout", "max_seq_len")


class ArchbenchConfig(PreTrainedConfig):
    """Fields shared by every architecture, named as in the pipeline's config.

    HF-standard names (``hidden_size``, ``num_hidden_layers``, ...) map onto them via
    ``attribute_map`` so generic tools (lm-eval's ``max_length`` lookup) find them.
    """

    attribute_map = {
        "hidden_size": "embed_dim",
        "num_hidden_layers": "layers",
        "num_attention_heads": "heads",
        "max_position_embeddings": "max_seq_len",
        "intermediate_size": "ffn_dim",
    }
    hparam_names: ClassVar[tuple] = HPARAMS  # what get_params() reports (not a config field)
    # Cross-key rules (models/constraints.py); the registry entry names the same function, which the
    # parse-time config check runs for every grid point.
    check_settings: ClassVar = staticmethod(check_common)

    vocab_size: int = 32000
    embed_dim: int = 512
    ffn_dim: int = 2048
    heads: int = 8
    layers: int = 6
    dropout: float = 0.0
    max_seq_len: int = 1024
    activation_fn: str = "gelu"
    tie_word_embeddings: bool = False
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        type(self).check_settings(vars(self))


class DecodeCache:
    """Per-layer decoding state with a batch dimension first: a KV cache or a retention state.

    ``layers[i]`` is a dict of tensors whose dim 0 is the batch. ``lengths`` [B] counts the real
    (non-pad) tokens each row has absorbed: it is the position of the next token of that row, so
    left padding never occupies cache slots. ``seq_length`` counts input columns (pads included),
    which is what ``generate`` compares against ``input_ids`` to slice new tokens.
    """

    is_compileable = False
    is_croppable = False  # no rollback: assisted decoding is refused via _is_stateful

    def __init__(self, num_layers: int):
        self.layers: list[dict[str, torch.Tensor]] = [{} for _ in range(num_layers)]
        self.lengths: torch.Tensor | None = None
        self.seq_length = 0
        self.max_length = 0  # max(lengths) as a Python int: no device sync per step
        self.uniform = True  # all rows have the same length (no padding mask needed)

    @property
    def is_linear(self) -> list[bool]:
        return [False] * len(self.layers)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seq_length

    def __len__(self) -> int:
        return len(self.layers)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Beam search: keep rows ``beam_idx`` (in place)."""
        for layer in self.layers:
            for key, value in layer.items():
                layer[key] = value.index_select(0, beam_idx.to(value.device))
        if self.lengths is not None:
            self.lengths = self.lengths.index_select(0, beam_idx.to(self.lengths.device))

    def nbytes(self) -> int:
        """Bytes of state actually in use (KV caches count only filled slots)."""
        total = 0
        for layer in self.layers:
            for key, value in layer.items():
                if key in ("k", "v"):  # [B, capacity, H, d]: only the filled slots count
                    total += value[:, : self.max_length].numel() * value.element_size()
                else:
                    total += value.numel() * value.element_size()
        return total


def pack_left(attention_mask: torch.Tensor):
    """Move each row's real tokens to the front (order kept) so padding sits at the end.

    A causal model ignores trailing padding, so packing makes left-padded rows compute exactly
    what they would alone. Returns ``(perm [B, T], n_valid [B])`` with ``x.gather(1, perm)``
    packing and ``scatter`` with the same ``perm`` unpacking.
    """
    valid = attention_mask.bool()
    perm = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    return perm, valid.sum(1)


class ArchbenchPreTrainedModel(PreTrainedModel):
    """Base class: ``forward`` contract, labels loss, generation hooks. Concrete classes list
    ``GenerationMixin`` in their own bases (transformers only sees it there).

    Subclasses build ``self.decoder`` (a torchscale decoder subclass) and implement
    ``_backbone(input_ids [B, T], n_valid [B] | None, cache | None, **kw) -> hidden [B, T, D]``
    (final-normed features, padding packed at the end of each row); ``kw`` are the ``forward``
    keywords the subclass names in ``backbone_kwargs`` (its own options; others are ignored, as
    ``generate`` passes keywords meant for other models).
    """

    backbone_kwargs: ClassVar[tuple] = ()

    base_model_prefix = "archbench"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _is_stateful = True  # our caches cannot be cropped: refuse assisted decoding

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # we bring our own cache (DecodeCache)

    def _init_weights(self, module):
        """Keep torchscale's initialisation; HF's default N(0, 0.02) would overwrite it."""

    def get_input_embeddings(self):
        return self.decoder.embed_tokens

    def set_input_embeddings(self, value):
        self.decoder.embed_tokens = value

    def get_output_embeddings(self):
        return self.decoder.output_projection

    def set_output_embeddings(self, value):
        self.decoder.output_projection = value

    def get_params(self) -> dict:
        """Flat dict of the hyperparameters that define this model (pipeline names)."""
        return {"arch": self.arch, **{k: getattr(self.config, k) for k in self.config.hparam_names}}

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        cache: DecodeCache | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = True,
        logits_to_keep: int = 0,
        past_key_values: DecodeCache | None = None,
        **kwargs,
    ):
        """Causal LM forward.

        Args:
            input_ids: [B, T] token ids (only the new tokens when ``cache`` holds a prefix).
            attention_mask: [B, T] (or [B, past + T] during generation) 1 = real token. Only the
                first (prefill) call reads it; rows are packed so left padding is exact.
            labels: [B, T]; the HF-shifted next-token cross-entropy ignoring -100.
            cache / past_key_values: a ``DecodeCache`` from a previous call.
            use_cache: return a cache (created when none was given). Default: only when a
                cache was passed in, so training / scoring calls (``model(x).logits``) skip the
                state computation; ``generate`` always passes it.
            logits_to_keep: if > 0, only the last ``logits_to_keep`` positions get logits.
            **kwargs: the architecture's own options (``backbone_kwargs``) go to ``_backbone``.
        Returns:
            ``CausalLMOutputWithPast`` with logits [B, T or logits_to_keep, V] in float32.
        """
        if input_ids is None:
            raise ValueError("input_ids is required (inputs_embeds is not supported)")
        cache = cache if cache is not None else past_key_values
        if use_cache is None:  # unlike HF's config default: plain scoring calls build no cache
            use_cache = cache is not None
        if use_cache and cache is None and not self.training:
            cache = DecodeCache(self.config.layers)
        elif not use_cache:
            cache = None
        options = {name: kwargs[name] for name in self.backbone_kwargs if name in kwargs}

        perm = n_valid = None
        prefill = cache is None or cache.seq_length == 0
        if attention_mask is not None and prefill:
            mask = attention_mask[:, -input_ids.shape[1] :]
            if not bool(mask.all()):
                perm, n_valid = pack_left(mask)
                input_ids = input_ids.gather(1, perm)

        hidden = self._backbone(input_ids, n_valid, cache, **options)  # [B, T, D]
        if perm is not None:  # unpack: row order as given
            hidden = torch.empty_like(hidden).scatter_(1, perm.unsqueeze(-1).expand_as(hidden), hidden)
        if cache is not None:
            cache.seq_length += input_ids.shape[1]
        if logits_to_keep and labels is None:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.decoder.output_projection(hidden).float()

        loss = None
        if labels is not None:
            loss = lm_loss(logits[:, :-1], labels[:, 1:])
        out = CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache)
        return out if return_dict is not False else out.to_tuple()


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``logits`` [B, T, V] against the aligned ``targets`` [B, T]
    (-100 = ignored), in fp32: under bf16 autocast the log-softmax over a large vocabulary loses precision.
    The one loss of the package: ``forward(labels=...)`` and the training module use it."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1).to(logits.device), ignore_index=-100
    )


# ----------------------------------------------------------------------------- attention kernels


# flash-attn 2 runs fp16 / bf16 on CUDA only; tests widen these to run a CPU stand-in with its signature
FLASH_DEVICES = ("cuda",)
FLASH_DTYPES = (torch.float16, torch.bfloat16)


@functools.cache
def _flash_attn_func():
    """flash-attn's ``flash_attn_func`` when importable (the ``[gpu]`` extra); looked up only for a
    tensor :func:`use_flash` accepts."""
    try:
        from flash_attn import flash_attn_func
    except Exception:  # not installed / no CUDA build
        return None
    return flash_attn_func


def use_flash(q: torch.Tensor) -> bool:
    return q.device.type in FLASH_DEVICES and q.dtype in FLASH_DTYPES and _flash_attn_func() is not None


def attention(q, k, v, mask=None, causal=False, dropout_p=0.0):
    """Softmax attention on pre-scaled queries.

    Args:
        q: [B, T, H, d] (already multiplied by d**-0.5), k/v: [B, S, H, d].
        mask: optional bool [B, 1, T, S], True = may attend.
        causal: query t sees keys j <= t (requires T == S when the SDPA path is taken).
    Returns:
        [B, T, H, d].
    """
    if mask is None and use_flash(q):
        return _flash_attn_func()(q, k, v, dropout_p=dropout_p, softmax_scale=1.0, causal=causal)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.transpose(1, 2),
        v.transpose(1, 2),
        attn_mask=mask,
        dropout_p=dropout_p,
        is_causal=causal and mask is None,
        scale=1.0,
    )
    return out.transpose(1, 2)


def attention_lse(q, k, v, mask=None, causal=False, dropout_p=0.0):
    """Like :func:`attention` but also returns the log of the softmax denominators.

    q: [B, T, H, d], k/v: [B, S, H, d], mask: bool [B, H or 1, T, S].
    Returns ``(out [B, T, H, d], lse [B, T, H] float32)``; rows without any allowed key give
    ``out = 0`` and ``lse = -inf``. SDPA does not expose the denominators, so the CPU path is
    explicit math; CUDA uses flash-attn's ``softmax_lse`` when available.
    """
    if mask is None and use_flash(q):
        out, lse, _ = _flash_attn_func()(
            q, k, v, dropout_p=dropout_p, softmax_scale=1.0, causal=causal, return_attn_probs=True
        )
        # the kernel marks a row with no allowed key by lse = +inf (softmax.h, non-split path): -inf here
        lse = lse.transpose(1, 2).float()
        return out, lse.masked_fill(lse == float("inf"), float("-inf"))
    scores = torch.einsum("bthd,bshd->bhts", q, k).float()
    if causal:
        T, S = scores.shape[-2:]
        tri = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        mask = tri if mask is None else mask & tri
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # [B, H, T]
    probs = torch.exp(scores - lse.unsqueeze(-1).clamp_min(-1e30)).nan_to_num(0.0)
    if dropout_p > 0:
        probs = F.dropout(probs, dropout_p)
    out = torch.einsum("bhts,bshd->bthd", probs.to(v.dtype), v)
    return out, lse.transpose(1, 2)
