"""Hugging Face plumbing shared by archbench's own architectures (RetNet, Transformer, LongNet).

Everything here is architecture-agnostic: the config base class, the decoding cache, the backbone /
head pair (``ArchbenchModel`` -> ``BaseModelOutputWithPast``, ``ArchbenchForCausalLM`` with ``lm_head``)
and their ``forward`` contract (left padding, hidden states, attention weights, ``inputs_embeds``, labels
loss, ``logits_to_keep``), the initialisation rules, and the attention kernels.
Only relative imports inside ``models/`` (and third-party ones): ``save_pretrained`` copies this file
and every module the model's classes import relatively next to the weights, flattened into one folder
(:func:`remote_code_files`), for ``trust_remote_code=True`` loading without archbench.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import re
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torchscale.component.feedforward_network import FeedForwardNetwork
from torchscale.component.gate_linear_unit import GLU
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

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
    # Cross-key rules (each architecture's spec, models/<name>/__init__.py); the registry entry holds the
    # same function, which the parse-time config check runs for every grid point.
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


# ----------------------------------------------------------------------------- initialisation


def _fresh(t) -> bool:
    """A tensor ``_init_weights`` may write: not one from_pretrained loaded (HF flags those)."""
    return t is not None and not getattr(t, "_is_hf_initialized", False)


def _scaled(t, fn, scale: float = 1.0) -> None:
    if _fresh(t):
        fn(t)
        if scale != 1.0:
            t.mul_(scale)


def init_linear(linear: nn.Linear, scale: float = 1.0) -> None:
    """``nn.Linear``'s own initialisation (what torchscale's FFN / GLU keep), times ``scale``."""
    _scaled(linear.weight, lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)), scale)
    bound = 1 / math.sqrt(linear.weight.shape[1])
    _scaled(linear.bias, lambda b: nn.init.uniform_(b, -bound, bound), scale)


def init_xavier(linear: nn.Linear, gain: float = 1.0, scale: float = 1.0, bias: str = "linear") -> None:
    """torchscale's xavier-uniform projections; ``bias``: "linear" (nn.Linear's, untouched by torchscale's
    reset) or "zero"."""
    _scaled(linear.weight, lambda w: nn.init.xavier_uniform_(w, gain=gain), scale)
    if bias == "zero":
        _scaled(linear.bias, nn.init.zeros_)
    else:
        bound = 1 / math.sqrt(linear.weight.shape[1])
        _scaled(linear.bias, lambda b: nn.init.uniform_(b, -bound, bound), scale)


def init_norm(module) -> None:
    _scaled(getattr(module, "weight", None), nn.init.ones_)
    _scaled(getattr(module, "bias", None), nn.init.zeros_)


def init_embedding(embedding: nn.Embedding) -> None:
    """torchscale's TextEmbedding (and our learned positions): N(0, dim^-1/2), the padding row zero."""
    w = embedding.weight
    if _fresh(w):
        nn.init.normal_(w, mean=0.0, std=w.shape[1] ** -0.5)
        if embedding.padding_idx is not None:
            w[embedding.padding_idx].zero_()


# ----------------------------------------------------------------------------- models


class ArchbenchPreTrainedModel(PreTrainedModel):
    """Base of every backbone (``RetNetModel``, ...) and head (``RetNetForCausalLM``, ...).

    Initialisation: the constructor initialises every tensor as torchscale does, in torchscale's RNG
    order (the default run's numbers depend on it), so ``post_init`` does not draw again. ``_init_weights``
    reproduces the same scheme per module (same distributions, buffers bit-identical) for what the
    constructor did not initialise: ``from_pretrained``'s missing keys, ``init_weights()`` on a model
    built on the meta device. Modules define ``archbench_linear_rules(scale)`` (their Linear children's
    rules) or ``archbench_init()`` (their own tensors).
    """

    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _is_stateful = True  # our caches cannot be cropped: refuse assisted decoding
    _skip_init = False
    # torchscale's Decoder (sub-LN) multiplies fc1 / fc2 / v_proj / out_proj by sqrt(log(2 * layers)) after
    # building them; its RetNetDecoder does not
    subln_scaled = False

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # we bring our own cache (DecodeCache)

    def post_init(self):
        self._skip_init = True  # the constructor already initialised everything (see the class doc)
        try:
            super().post_init()
        finally:
            self._skip_init = False

    def _init_scale(self) -> float:
        return math.sqrt(math.log(2 * self.config.layers)) if self.subln_scaled else 1.0

    def initialize_weights(self):
        for module in self.modules():  # module ids may have changed since the last call
            module.__dict__.pop("_linear_rules", None)
        super().initialize_weights()

    def _linear_rule(self, linear: nn.Linear):
        """How the constructor initialised ``linear``: its parent decides (transformers skips modules without
        parameters of their own, e.g. an attention block, so each Linear is initialised itself)."""
        rules = self.__dict__.get("_linear_rules")
        if rules is None:
            rules, scale = {}, self._init_scale()
            for parent in self.modules():
                own = getattr(parent, "archbench_linear_rules", None)
                if own is not None:
                    rules.update({id(child): rule for child, rule in own(scale)})
                elif isinstance(parent, (GLU, FeedForwardNetwork)):
                    rules[id(parent.fc1)] = functools.partial(init_linear, scale=scale)
                    rules[id(parent.fc2)] = functools.partial(init_linear, scale=scale)
                    if isinstance(parent, GLU):
                        rules[id(parent.gate)] = init_linear
            head = getattr(self, "lm_head", None)
            if head is not None and not self.config.tie_word_embeddings:
                rules[id(head)] = lambda m: _scaled(m.weight, lambda w: nn.init.normal_(w, std=w.shape[1] ** -0.5))
            self.__dict__["_linear_rules"] = rules
        return rules.get(id(linear))

    def _init_weights(self, module):
        if self._skip_init:
            return
        if isinstance(module, nn.Linear):
            rule = self._linear_rule(module)
            if rule is not None:
                rule(module)
        elif hasattr(module, "archbench_init"):  # e.g. RetNet's position buffers
            module.archbench_init()
        elif isinstance(module, nn.Embedding):
            init_embedding(module)
        elif "LayerNorm" in type(module).__name__ or "RMSNorm" in type(module).__name__:
            init_norm(module)

    def get_params(self) -> dict:
        """Flat dict of the hyperparameters that define this model (pipeline names)."""
        return {"arch": self.arch, **{k: getattr(self.config, k) for k in self.config.hparam_names}}


def output_projection(args, embed: nn.Embedding) -> nn.Linear:
    """torchscale's ``build_output_projection`` (same RNG draws): the LM head."""
    proj = nn.Linear(embed.weight.shape[1], embed.weight.shape[0], bias=False)
    if args.share_decoder_input_output_embed:
        proj.weight = embed.weight
    else:
        nn.init.normal_(proj.weight, mean=0, std=args.decoder_embed_dim**-0.5)
    return proj


class ArchbenchModel(ArchbenchPreTrainedModel):
    """Backbone: ``forward`` returns the final-normed hidden states (``BaseModelOutputWithPast``).

    Subclasses build ``self.decoder`` (a torchscale decoder without its output projection, which the
    constructor hands to ``_head``: drawn where torchscale draws it, so initialisation is unchanged) and
    implement ``_backbone(x [B, T, D] token embeddings, n_valid [B] | None, cache | None, hiddens: list |
    None, attns: list | None, **kw) -> hidden [B, T, D]`` (padding packed at the end of each row; it appends
    each layer's input to ``hiddens`` and each layer's weights [B, H, T, S] to ``attns``); ``kw`` are the
    ``forward`` keywords named in ``backbone_kwargs`` (others are ignored: ``generate`` passes keywords
    meant for other models).
    """

    backbone_kwargs: ClassVar[tuple] = ()

    def __init__(self, config):
        super().__init__(config)
        self.gradient_checkpointing = False

    def get_input_embeddings(self):
        return self.decoder.embed_tokens

    def set_input_embeddings(self, value):
        self.decoder.embed_tokens = value

    def get_decoder(self):
        return self

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        cache: DecodeCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = True,
        past_key_values: DecodeCache | None = None,
        **kwargs,
    ):
        """Args:
        input_ids: [B, T] token ids (only the new tokens when ``cache`` holds a prefix); or
        inputs_embeds: [B, T, D] what the token embedding returns for them (soft prompts).
        attention_mask: [B, T] (or [B, past + T] during generation) 1 = real token. Only the
            first (prefill) call reads it; rows are packed so left padding is exact.
        cache / past_key_values: a ``DecodeCache`` from a previous call.
        use_cache: return a cache (created when none was given); default ``config.use_cache``. A
            model in training mode creates none (its state would keep the autograd graph). The
            outputs do not depend on it: the pipeline's training passes ``use_cache=False`` so no
            state is computed; scoring calls get bit-identical logits either way.
        output_hidden_states: ``hidden_states`` = the embeddings and each layer's output, the last
            one final-normed (``layers + 1`` tensors [B, T, D]).
        output_attentions: ``attentions`` = one [B, H, T, S] tensor per layer: softmax weights
            (Transformer: dense; LongNet: its dilated branches mixed as the output mixes them) or
            RetNet's parallel retention matrix ``(q~ k~^T * D) / sqrt(c)`` over the new tokens
            (a prefix in the cache is compressed into the state). Computed without dropout.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        config = self.config
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        cache = cache if cache is not None else past_key_values
        use_cache = config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None and not self.training:
            cache = DecodeCache(config.layers)
        elif not use_cache:
            cache = None
        options = {name: kwargs[name] for name in self.backbone_kwargs if name in kwargs}

        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        T = inputs_embeds.shape[1]
        perm = n_valid = None
        if attention_mask is not None and (cache is None or cache.seq_length == 0):
            mask = attention_mask[:, -T:]
            if not bool(mask.all()):
                perm, n_valid = pack_left(mask)
                inputs_embeds = inputs_embeds.gather(1, perm.unsqueeze(-1).expand_as(inputs_embeds))

        hiddens = [] if output_hidden_states else None
        attns = [] if output_attentions else None
        hidden = self._backbone(inputs_embeds, n_valid, cache, hiddens, attns, **options)  # [B, T, D]
        if hiddens is not None:
            hiddens.append(hidden)
        if n_valid is not None:  # a pad's features: its row's last real token's, however many pads follow
            hidden = _fill_pads(hidden, n_valid)
            hiddens = hiddens and [_fill_pads(h, n_valid) for h in hiddens]
        if perm is not None:  # unpack: row order as given
            hidden = _unpack(hidden, perm, 1)
            hiddens = hiddens and [_unpack(h, perm, 1) for h in hiddens]
            attns = attns and [_unpack(_unpack(a, perm, 2), perm, 3) for a in attns]
        if cache is not None:
            cache.seq_length += T
        out = BaseModelOutputWithPast(
            last_hidden_state=hidden,
            cache=cache,
            hidden_states=tuple(hiddens) if hiddens is not None else None,
            attentions=tuple(attns) if attns is not None else None,
        )
        return out if return_dict is not False else out.to_tuple()

    def _layer(self, layer, x, attns, **kw):
        """One block; ``attns`` collects its weights when not None."""
        if attns is None:
            return layer(x, **kw)
        x, weights = layer(x, output_attentions=True, **kw)
        attns.append(weights)
        return x


def _fill_pads(h: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """h [B, T, D] packed (row b real up to n_valid[b]): the pad positions take the last real position's
    values, so what a pad reads does not depend on the number of pads (nor on their positions)."""
    B, T = h.shape[:2]
    last = h[torch.arange(B, device=h.device), (n_valid - 1).clamp_min(0)]  # [B, D]
    valid = torch.arange(T, device=h.device)[None] < n_valid[:, None]
    return torch.where(valid.unsqueeze(-1), h, last.unsqueeze(1))


def _unpack(t: torch.Tensor, perm: torch.Tensor, dim: int) -> torch.Tensor:
    """Undo :func:`pack_left` along ``dim`` of ``t`` ([B, ...], perm [B, T])."""
    shape = [1] * t.dim()
    shape[0], shape[dim] = perm.shape
    index = perm.view(shape).expand_as(t)
    return torch.empty_like(t).scatter_(dim, index, t)


def _rename_legacy_keys(state_dict, prefix, *args):
    """``load_state_dict`` hook: the layout before the backbone / head split (archbench <= 2026-12-07:
    ``decoder.*`` at the top, the LM head inside it as ``decoder.output_projection``), e.g. a Lightning
    checkpoint written by older code."""
    for key in list(state_dict):
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        if rest is None or not rest.startswith("decoder."):
            continue
        new = rest.replace("decoder.output_projection.", "lm_head.", 1)
        new = new if new != rest else "model." + rest
        state_dict[prefix + new] = state_dict.pop(key)


class ArchbenchForCausalLM(ArchbenchPreTrainedModel):
    """Head: the backbone (``self.model``, ``base_model_prefix``) and the LM head ``lm_head``. Concrete
    classes name ``backbone_class`` and list ``GenerationMixin`` in their own bases (transformers only sees
    it there)."""

    backbone_class: ClassVar[type] = ArchbenchModel
    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}
    # from_pretrained of a directory saved before the backbone / head split (regexes on checkpoint keys)
    legacy_key_mapping: ClassVar[dict] = {r"^decoder\.output_projection\.": "lm_head.", r"^decoder\.": "model.decoder."}

    def __init__(self, config):
        super().__init__(config)
        # lm_head is registered first: the optimiser's parameter groups (and the clipped gradient norm's
        # summation order) keep the order of the layout before the split, where the head came right after
        # the token embedding, so the default run's numbers stay bit-identical
        self.register_module("lm_head", None)
        head = []
        self.model = self.backbone_class(config, _head=head)
        self.lm_head = head[0]
        self._register_load_state_dict_pre_hook(_rename_legacy_keys)
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        kwargs.setdefault("key_mapping", cls.legacy_key_mapping)
        loaded = super().from_pretrained(*args, **kwargs)
        # transformers would save a model back in the layout its key mapping came from: keep today's
        (loaded[0] if isinstance(loaded, tuple) else loaded)._weight_conversions = None
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' save, plus the modeling code (:func:`remote_code_files`) and the config's
        ``auto_map`` naming its classes, so ``trust_remote_code=True`` loads it without archbench."""
        config_class, backbone = type(self.config), type(self.model)
        auto_map = {
            "AutoConfig": f"{flat_name(config_class.__module__)}.{config_class.__name__}",
            "AutoModelForCausalLM": f"{flat_name(type(self).__module__)}.{type(self).__name__}",
        }
        # a plugin head that subclasses ours with a config of its own inherits our backbone (another
        # config class): AutoModel would refuse it
        if backbone.config_class is config_class:
            auto_map["AutoModel"] = f"{flat_name(backbone.__module__)}.{backbone.__name__}"
        self.config.auto_map = auto_map
        out = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            for name, source in remote_code_files([type(self), backbone, config_class]).items():
                with open(os.path.join(save_directory, f"{name}.py"), "w", encoding="utf-8") as fh:
                    fh.write(source)
        return out

    @property
    def decoder(self):
        """The torchscale decoder (embeddings, layers, final norm) inside the backbone."""
        return self.model.decoder

    @property
    def backbone_kwargs(self) -> tuple:
        return self.model.backbone_kwargs

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def get_decoder(self):
        return self.model

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        cache: DecodeCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = True,
        logits_to_keep: int = 0,
        past_key_values: DecodeCache | None = None,
        shift_labels: torch.LongTensor | None = None,
        **kwargs,
    ):
        """Causal LM forward: the backbone's arguments (:meth:`ArchbenchModel.forward`) and
        labels: [B, T]; the HF-shifted next-token cross-entropy ignoring -100;
        shift_labels: [B, T] targets already aligned with the logits (transformers' name; sequence
        parallelism shifts before splitting): the loss is taken against them, unshifted;
        logits_to_keep: if > 0, only the last ``logits_to_keep`` positions get logits.
        Returns ``CausalLMOutputWithPast`` with logits [B, T or logits_to_keep, V] in float32."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            cache=cache if cache is not None else past_key_values,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
            **kwargs,
        )
        hidden = out.last_hidden_state
        if logits_to_keep and labels is None and shift_labels is None:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden).float()
        loss = None
        if shift_labels is not None:
            loss = lm_loss(logits, shift_labels)
        elif labels is not None:
            loss = lm_loss(logits[:, :-1], labels[:, 1:])
        result = CausalLMOutputWithPast(
            loss=loss, logits=logits, cache=out.cache, hidden_states=out.hidden_states, attentions=out.attentions
        )
        return result if return_dict is not False else result.to_tuple()


_ROOT = __name__.rpartition(".")[0]  # archbench.models (or the folder of a saved copy)
_RELATIVE = re.compile(r"^(\s*from\s+)(\.+)([\w.]*)(\s+import\b)", re.MULTILINE)  # transformers' own form


def flat_name(module: str) -> str:
    """The name a module's file gets in a saved model's folder (one flat folder, as transformers loads
    remote code): its path below ``archbench.models`` with dots as underscores (``retnet.modeling`` ->
    ``retnet_modeling``; a package's ``__init__`` -> the package's path); a module elsewhere keeps its
    last name."""
    if module.startswith(_ROOT + "."):
        return module[len(_ROOT) + 1 :].replace(".", "_")
    return module.rpartition(".")[2]


def remote_code_files(classes) -> dict[str, str]:
    """``{flat name: source}`` of the modules defining ``classes`` and of every module they import
    relatively (followed through the files, imports inside functions too), each relative import
    rewritten to ``from .<flat name> import``: the only form transformers follows, in one folder.
    transformers' own copy (``custom_object_save``) takes only ``from .x`` siblings of the first file."""
    out: dict[str, str] = {}
    todo = [c.__module__ for c in classes]
    while todo:
        name = todo.pop()
        flat = flat_name(name)
        if flat in out:
            continue
        path = importlib.util.find_spec(name).origin
        package = name if os.path.basename(path) == "__init__.py" else name.rpartition(".")[0]

        def rewrite(m: re.Match, name=name, package=package) -> str:
            target = importlib.util.resolve_name(m[2] + m[3], package)
            if target == _ROOT:  # archbench.models itself: the registry and all of archbench behind it
                raise ValueError(f"{name}: import from the module, not `{m[0].strip()}` (remote code copies it)")
            todo.append(target)
            return f"{m[1]}.{flat_name(target)}{m[4]}"

        with open(path, encoding="utf-8") as fh:
            out[flat] = _RELATIVE.sub(rewrite, fh.read())
    return out


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
