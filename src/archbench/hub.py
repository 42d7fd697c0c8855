"""Hugging Face hub access shared by the data and evaluation stages."""

from __future__ import annotations


def offline() -> bool:
    """Offline mode as the Hugging Face libraries read it: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE)
    through huggingface_hub, HF_DATASETS_OFFLINE through datasets (read once, when they are imported)."""
    import datasets.config
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE or datasets.config.HF_HUB_OFFLINE)
