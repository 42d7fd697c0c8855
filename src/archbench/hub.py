"""Hugging Face hub access shared by the data and evaluation stages."""

from __future__ import annotations

# The model card's "How to load" section sits between these markers, so that a push can name the Hub
# repository in it (the card on disk names the local folder).
LOAD_START, LOAD_END = "<!-- archbench:load -->", "<!-- /archbench:load -->"
TORCHSCALE = "torchscale==0.3.0 einops"  # what archbench's own architectures' remote code imports


def load_section(source: str, remote_code: bool) -> str:
    """The model card's loading snippet for ``source`` (a local folder or a Hub repository id), between
    :data:`LOAD_START` and :data:`LOAD_END`."""
    kwargs = ", trust_remote_code=True" if remote_code else ""
    needs = (
        "Its modeling code ships beside the weights (`trust_remote_code=True`) and imports torchscale: "
        f"`pip install transformers {TORCHSCALE}` (archbench itself is not needed)."
        if remote_code
        else "A stock transformers architecture: `pip install transformers` is all it needs."
    )
    return (
        f"{LOAD_START}\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f'model = AutoModelForCausalLM.from_pretrained("{source}"{kwargs})\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{source}"{kwargs})\n```\n\n{needs}\n{LOAD_END}'
    )


def card_for_repo(card: str, repo_id: str) -> str:
    """A model card's text with its loading section pointing at the Hub repository ``repo_id`` (cards
    without the section come back unchanged)."""
    start, end = card.find(LOAD_START), card.find(LOAD_END)
    if start < 0 or end < start:
        return card
    remote = "trust_remote_code=True" in card[start:end]
    return card[:start] + load_section(repo_id, remote) + card[end + len(LOAD_END) :]


def offline() -> bool:
    """Offline mode as the Hugging Face libraries read it: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE)
    through huggingface_hub, HF_DATASETS_OFFLINE through datasets (read once, when they are imported)."""
    import datasets.config
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE or datasets.config.HF_HUB_OFFLINE)


def push_run(
    run_dir: str,
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a run's ``model/`` folder (weights, config, modeling code, tokenizer, model card
    ``README.md``, its loading section naming ``repo_id``) to the Hub model repository ``repo_id``
    (created if missing) through ``huggingface_hub.upload_folder``; return the commit's URL. Checks everything first: offline, or a
    folder that is not a finished run, fails with one line before anything is uploaded."""
    import os
    import tempfile
    from pathlib import Path

    from archbench.errors import ArchbenchError

    model_dir = Path(run_dir) / "model"
    missing = [f for f in ("config.json", "README.md") if not (model_dir / f).is_file()]
    if missing:
        raise ArchbenchError(
            f"{run_dir}: not a finished run with a model card (no {', '.join('model/' + f for f in missing)}); "
            "push a folder under results/runs/ whose training finished"
        )
    if "/" not in repo_id.strip("/"):
        raise ArchbenchError(f"hub repo id {repo_id!r} must be NAMESPACE/NAME (your user or organisation)")
    if offline():
        raise ArchbenchError(
            f"cannot push {run_dir} to {repo_id}: the Hugging Face Hub is offline here (HF_HUB_OFFLINE is set); "
            "unset it on a machine with network access and log in (`hf auth login` or HF_TOKEN)"
        )
    from huggingface_hub import create_repo, upload_folder

    create_repo(repo_id, private=private, exist_ok=True, token=token, repo_type="model")
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as stage:  # the folder as linked files, its card naming repo_id
        for item in model_dir.iterdir():
            if item.name != "README.md":
                os.symlink(item.resolve(), os.path.join(stage, item.name))
        Path(stage, "README.md").write_text(card_for_repo(card, repo_id), encoding="utf-8")
        info = upload_folder(
            repo_id=repo_id,
            folder_path=stage,
            revision=revision,
            token=token,
            commit_message=commit_message or f"archbench run {run_dir}",
        )
    return str(getattr(info, "commit_url", info))


def repo_name(template: str, arch: str, point: str, seed: int | str) -> str:
    """A Hub repository name from ``hub.push.repo_template``: ``{arch}``, ``{seed}``, ``{point}`` (the grid
    point folder, ``~`` as ``-``) and ``{hash}`` (8 hex digits of the point, for names under 96 characters)."""
    import hashlib

    return template.format(
        arch=arch, seed=seed, point=point.replace("~", "-"), hash=hashlib.sha256(point.encode()).hexdigest()[:8]
    )


def push_settings(config: dict) -> dict:
    """``hub.push`` of a validated config; ConfigError (at parse time) when it is enabled without a
    namespace."""
    from archbench.errors import ConfigError

    push = config.get("hub", {}).get("push", {})
    if push.get("enabled") and not push.get("namespace"):
        raise ConfigError("hub.push.enabled is true but hub.push.namespace is null: name the Hub user or organisation")
    return push


def run_repo_id(push: dict, run_dir: str) -> str:
    """``namespace/name`` of the repository a run (``.../runs/{arch}/{point}/seed~{seed}``) is pushed to."""
    from pathlib import Path

    parts = Path(run_dir).parts
    name = repo_name(push["repo_template"], parts[-3], parts[-2], parts[-1].removeprefix("seed~"))
    return f"{push['namespace']}/{name}"
