"""``mamba2``'s model: transformers' stock ``Mamba2ForCausalLM``, or for a hybrid the stock
``NemotronHForCausalLM`` started from the pure model of the same seed (the spec's docstring)."""

from __future__ import annotations

from .spec import ATTENTION, MAMBA, Mamba2Settings


def pure_config(config):
    """The stock ``Mamba2Config`` that :meth:`Mamba2Settings.to_hf` gives a hybrid ``NemotronHConfig``'s
    settings without attention layers: the pure model a hybrid of the same seed starts from."""
    return Mamba2Settings(
        vocab_size=config.vocab_size,
        embed_dim=config.hidden_size,
        layers=len(config.layers_block_type),
        heads=config.mamba_num_heads,
        ssm_head_dim=config.mamba_head_dim,
        ssm_expand=config.expand,
        ssm_state_size=config.ssm_state_size,
        ssm_chunk_size=config.chunk_size,
        ssm_conv_kernel=config.conv_kernel,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        max_seq_len=config.max_position_embeddings,
    ).to_hf()


def build(config):
    """The model of :meth:`Mamba2Settings.to_hf`'s config: the stock ``Mamba2ForCausalLM``, or for a
    hybrid the stock ``NemotronHForCausalLM`` whose Mamba-2 layers, embeddings, final norm and head are
    those of the ``Mamba2ForCausalLM`` this seed would give (built first, then copied; layer i to layer
    i), its attention layers initialised N(0, 0.02) as Llama's. On the meta device nothing is copied."""
    import torch
    from transformers import Mamba2ForCausalLM, NemotronHForCausalLM

    if config.model_type == "mamba2":
        return Mamba2ForCausalLM(config)
    if torch.get_default_device().type == "meta":
        return NemotronHForCausalLM(config)
    pure = Mamba2ForCausalLM(pure_config(config))
    model = NemotronHForCausalLM(config)
    source = pure.state_dict()
    target = {
        "model.embeddings.weight": source["backbone.embeddings.weight"],
        "model.norm_f.weight": source["backbone.norm_f.weight"],
        "lm_head.weight": source["lm_head.weight"],
    }
    for i, kind in enumerate(config.layers_block_type):
        if kind == MAMBA:
            prefix = f"backbone.layers.{i}."
            target.update(
                {f"model.layers.{i}.{k[len(prefix) :]}": v for k, v in source.items() if k.startswith(prefix)}
            )
    with torch.no_grad():
        missing, unexpected = model.load_state_dict(target, strict=False)
    # left at their own init: exactly the attention layers' weights (their mixer and block norm)
    stray = [
        k
        for k in missing
        if not k.startswith("model.layers.") or config.layers_block_type[int(k.split(".")[2])] != ATTENTION
    ]
    if unexpected or stray:
        raise RuntimeError(f"Mamba-2 hybrid: weights not copied from the pure model: {unexpected or stray}")
    return model
