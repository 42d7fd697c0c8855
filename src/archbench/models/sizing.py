"""Model construction from pipeline names and parameter counting (matching: :mod:`.matching`)."""

from __future__ import annotations

import dataclasses
import functools
import json

from .hf import HfSettings
from .registry import ARCHS, get_arch
from .spec import count_parameters


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _own(entry) -> set[str]:
    """The pipeline names an entry's settings class accepts: its fields but the entry's fixed ones."""
    return _fields(entry.config_cls()) - set(entry.settings_args)


def config_fields(arch: str) -> set[str]:
    """The pipeline names ``arch``'s config class accepts (its dataclass fields)."""
    return _own(get_arch(arch))


def _settings(entry, hparams: dict):
    """The entry's settings object for pipeline names (None = default; other architectures' dropped)."""
    own = _own(entry)
    return entry.config_cls()(**entry.settings_args, **{k: v for k, v in hparams.items() if v is not None and k in own})


def make_config(arch: str, **hparams):
    """Config for ``arch`` (a name in :mod:`archbench.models.registry`) from pipeline keyword names.
    None values mean "use the default"; settings that belong to another registered architecture
    (e.g. ``chunk_size`` for a Transformer) are dropped, so one grid point can build all of them;
    anything else unknown raises TypeError. Wrapped stock models (llama, mamba2) take pipeline names
    in a settings class whose ``to_hf()`` gives the stock transformers config, returned here."""
    entry = get_arch(arch)
    own = _own(entry)
    # every registered architecture's settings, and the generic transformers entries' (model.hf):
    # hf- entries are built on lookup and not iterated
    generic = _fields(HfSettings) - {"model_type"}
    others = set().union(generic, *(_own(a) for a in ARCHS.values())) - own
    unknown = set(hparams) - own - others
    if unknown:
        raise TypeError(f"unknown hyperparameters for {arch}: {sorted(unknown)}")
    config = _settings(entry, hparams)
    return config.to_hf() if hasattr(config, "to_hf") else config


def build_model(arch: str, **hparams):
    """Build a freshly initialised ``...ForCausalLM`` for ``arch`` (a registry name) from pipeline
    names (vocab_size, embed_dim, ffn_dim, heads, layers, dropout, max_seq_len, value_embed_dim,
    chunk_size, chunkwise_above, position, segment_lengths, dilated_ratios, ...)."""
    from . import register

    register()  # save_pretrained copies the modeling code only for classes marked for auto classes
    config = make_config(arch, **hparams)
    return get_arch(arch).model_cls()(config)


def _freeze(hparams: dict) -> str:
    return json.dumps(hparams, sort_keys=True)  # hashable, and nested settings (model.hf) too


@functools.lru_cache(maxsize=4096)
def _count(arch: str, frozen: str, include_embeddings: bool) -> int:
    import torch

    with torch.device("meta"):
        model = build_model(arch, **json.loads(frozen))
    return count_parameters(model, include_embeddings)


def count(arch: str, hparams: dict, include_embeddings: bool = True) -> int:
    """Parameters of ``arch`` built from pipeline names ``hparams`` on the ``meta`` device (nothing
    allocated, milliseconds): any registered architecture, no closed form needed."""
    return _count(arch, _freeze(hparams), include_embeddings)


def resolved_settings(arch: str, **hparams) -> dict:
    """``hparams`` (pipeline names) with the defaults of ``arch``'s config class filled in, as the model
    is built (settings of other architectures dropped): what the registry's ``params`` / ``flops`` /
    ``describe`` functions read. Imports the config class (torch for archbench's own models)."""
    entry = get_arch(arch)
    config = _settings(entry, hparams)
    return {name: getattr(config, name) for name in _own(entry)}


def analytic_parameters(arch: str, include_embeddings: bool = True, **hparams) -> int:
    """Closed-form count of :func:`count_parameters` for a config (no model is built): the registry
    entry's ``params`` function; an architecture without one is counted on the meta device."""
    entry = get_arch(arch)
    if entry.params is None:
        return count(arch, hparams, include_embeddings)
    return entry.param_count()(resolved_settings(arch, **hparams), include_embeddings)
