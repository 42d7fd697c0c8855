"""``hf-<model_type>``'s model: the stock ``...ForCausalLM`` of transformers, probed once for a measurable
decoding cache (the spec's docstring)."""

from __future__ import annotations

from ..spec import count_parameters


def build(config):
    """A freshly initialised stock ``...ForCausalLM`` for ``config``; a real model is probed once."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config)
    if next(model.parameters()).device != torch.device("meta"):
        probe(model)
    return model


def non_embedding_parameters(config) -> int:
    """Parameters of the model of ``config`` without its embeddings, built on the meta device."""
    import torch

    with torch.device("meta"):
        return count_parameters(build(config), include_embeddings=False)


def probe(model) -> None:
    """Prefill 3 tokens with ``use_cache=True``, decode one: the cache must come back as an object whose
    bytes :func:`archbench.models.cache.cache_nbytes` counts (> 0). Raises one clear line otherwise."""
    import torch

    from ..cache import cache_nbytes

    kind, was_training = model.config.model_type, model.training
    ids = torch.tensor([[4, 5, 6]], device=next(model.parameters()).device) % model.config.vocab_size
    model.eval()
    try:
        with torch.no_grad():
            out = model(ids, use_cache=True)
            cache = decode_cache(out)
            if cache is None:
                raise RuntimeError("a cached forward returned no cache object")
            nbytes = cache_nbytes(cache)
            if nbytes <= 0:
                raise RuntimeError(f"its cache ({type(cache).__name__}) holds no countable tensors")
            model(ids[:, -1:], **{cache_keyword(output=out): cache}, use_cache=True)
    except Exception as err:
        raise RuntimeError(f"hf-{kind}: cached decoding cannot be measured on this device: {err}") from None
    finally:
        model.train(was_training)


def decode_cache(output):
    """The decoding state a cached forward returned: ``cache`` (transformers' Cache classes) or RWKV's
    ``state`` list."""
    cache = output.get("cache")
    return cache if cache is not None else output.get("state")


def cache_keyword(model=None, output=None) -> str:
    """The forward keyword the decoding state goes back in: ``state`` for RWKV, else ``cache``."""
    if output is not None:
        return "cache" if output.get("cache") is not None else "state"
    return "state" if getattr(model.config, "model_type", None) == "rwkv" else "cache"
