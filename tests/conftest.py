"""Shared pytest fixtures. Tests never touch the network: the Hugging Face hub is forced offline."""

import pytest


@pytest.fixture(autouse=True)
def _hf_offline(monkeypatch):
    """Offline mode for every test, so nothing waits on (or downloads from) the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
