"""The Hub-style model card (``model/README.md``) of a run, written with huggingface_hub's
``ModelCard`` / ``ModelCardData``: architecture and settings, parameter counts, data and tokenizer
fingerprints, training recipe, provenance, how to load it (the local folder; ``archbench push`` names
the Hub repository there in the uploaded copy), and the validation / test losses and
lm-eval harness scores as ``model-index`` metadata (what the Hub parses into evaluation results).

The card is written when training saves the model (losses known); the harness job adds its scores
(:func:`add_harness_scores`) because ``harness.json`` only exists after training. The harness job
already holds the model folder and the scores, and a separate rule would rewrite the same file inside
the train job's folder anyway; its rerun (a changed ``eval.*``) refreshes the card's scores.

:func:`finish_model_dir` also makes the saved tokenizer name ``</s>`` as its BOS token: training packs
documents as ``ids </s> ids </s>``, so ``</s>`` is the start-of-document token the model learnt (``<s>``
was never trained). lm-eval's ``HFLM`` prefixes loglikelihoods with the tokenizer's BOS, so the stock
``lm_eval --model hf`` command then scores exactly as the pipeline's harness (which passes
``prefix_token_id=</s>``) does. Token ids do not change; BOS = EOS is GPT-2's convention.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from archbench.hub import load_section
from archbench.io import atomic_file
from archbench.provenance import data_fingerprint, provenance_block, tokenizer_sha256

CARD = "README.md"
HARNESS_SOURCE = "lm-evaluation-harness"  # EvalResult.source_name of harness scores (replaced on update)
RESULTS_START, RESULTS_END = "<!-- results -->", "<!-- /results -->"
RECIPE_KEYS = (
    "learning_rate",
    "weight_decay",
    "betas",
    "warmup_steps",
    "batch_size",
    "accumulate_grad_batches",
    "seq_len",
    "max_steps",
    "epochs",
    "precision",
    "gradient_clip_val",
)
# The README's stock command (one line, `<run>` the only placeholder); the card fills in its run.
STOCK_LM_EVAL = (
    "lm_eval --model hf --model_args pretrained=<run>/model,trust_remote_code=True "
    "--tasks archbench_ppl,archbench_cloze,archbench_lastword --include_path results/eval/tasks "
    "--limit 40 --batch_size 8 --seed 1234 --output_path results/eval/stock"
)


def _table(rows: dict) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| `{k}` | `{json.dumps(v, default=str)}` |" for k, v in rows.items()]
    return "\n".join(lines)


def _data_section(tokens: dict) -> tuple[str, str | None]:
    """Per split: shards, documents, tokens (from the token indexes), and the data fingerprint."""
    rows, indexes = [], [tokens[s] for s in ("train", "validation", "test") if tokens.get(s)]
    for split in ("train", "validation", "test"):
        path = tokens.get(split)
        if not path or not os.path.isfile(path):
            continue
        index = json.loads(Path(path).read_text())
        names = ", ".join(s["name"] for s in index.get("shards", []))
        rows.append(f"| {split} | {index.get('n_documents')} | {index.get('n_tokens')} | {names} |")
    fingerprint = data_fingerprint(*indexes)
    table = "\n".join(["| split | documents | tokens | shards |", "|---|---|---|---|", *rows])
    return table, fingerprint


def _eval_results(losses: dict, harness: dict | None):
    """EvalResults of the held-out losses ({split: loss}) and the harness scores ({task: {metric: v}})."""
    from huggingface_hub import EvalResult

    out = []
    for split in ("validation", "test"):
        loss = losses.get(split)
        if loss is None:
            continue
        for metric, value in (("loss", loss), ("perplexity", math.exp(loss))):
            out.append(
                EvalResult(
                    task_type="text-generation",
                    dataset_type="archbench-corpus",
                    dataset_name="archbench training corpus (held-out split)",
                    dataset_split=split,
                    metric_type=metric,
                    metric_name=f"{split} {metric}",
                    metric_value=float(value),
                )
            )
    for task, metrics in (harness or {}).items():
        for metric, value in metrics.items():
            if value is None or metric.endswith("_stderr"):
                continue
            out.append(
                EvalResult(
                    task_type="text-generation",
                    dataset_type=task,
                    dataset_name=task,
                    dataset_split="test",
                    metric_type=metric,
                    metric_value=float(value),
                    source_name=HARNESS_SOURCE,
                    source_url="https://github.com/EleutherAI/lm-evaluation-harness",
                )
            )
    return out


def _results_section(eval_results) -> str:
    lines = [RESULTS_START, "| dataset | split | metric | value | source |", "|---|---|---|---|---|"]
    for r in eval_results:
        lines.append(
            f"| {r.dataset_name} | {r.dataset_split} | {r.metric_type} | {r.metric_value:.6g} | "
            f"{r.source_name or 'training run'} |"
        )
    return "\n".join([*lines, RESULTS_END])


def _save(card, model_dir: str | os.PathLike) -> Path:
    path = Path(model_dir) / CARD
    with atomic_file(path) as tmp:
        tmp.write_text(str(card), encoding="utf-8")
    return path


def build_card(
    *,
    arch: str,
    seed: int,
    settings: dict,
    model,
    losses: dict,
    tokens: dict,
    tokenizer_dir: str,
    device=None,
    run_dir: str | None = None,
    saved_config: dict | None = None,
):
    """The ``ModelCard`` of a trained model (see the module docstring for what it holds);
    ``saved_config``: its ``config.json`` as saved (default: the model's config)."""
    from huggingface_hub import ModelCard, ModelCardData

    from archbench.models import count_parameters, get_arch

    entry = get_arch(arch)
    run = os.path.relpath(run_dir) if run_dir else "<run>"
    model_name = f"archbench-{arch}" + (f" ({Path(run).parent.name}, seed {seed})" if run_dir else "")
    total = count_parameters(model, include_embeddings=True)
    non_embedding = count_parameters(model, include_embeddings=False)
    saved = saved_config if saved_config is not None else model.config.to_diff_dict()
    config = {k: v for k, v in saved.items() if not k.startswith("_") and k != "auto_map"}
    data_table, fingerprint = _data_section(tokens)
    tok_sha = tokenizer_sha256(tokenizer_dir)
    eval_results = _eval_results(losses, None)
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["archbench", arch, entry.state],
        model_name=model_name,
        eval_results=eval_results,
    )
    prov = provenance_block(
        settings=settings, tokenizer_dir=tokenizer_dir, token_indexes=list(tokens.values()), device=device
    )
    recipe = {k: settings[k] for k in RECIPE_KEYS if k in settings}
    # archbench's own architectures ship their modeling code; llama / mamba2 are stock transformers
    load_kwargs = ", trust_remote_code=True" if model.config.model_type.startswith("archbench_") else ""
    body = f"""
# {model_name}

A {entry.display} causal language model trained by archbench (seed {seed}),
one run of a matched-size architecture comparison. Decode state: `{entry.state}`.

## Architecture and settings

Parameters: {total:,} in total, {non_embedding:,} without embeddings.

{_table(config)}

## Data

Token data fingerprint (sha256 over the split indexes): `{fingerprint}`.

{data_table}

## Tokenizer

{model.config.vocab_size:,} tokens,
`tokenizer.json` sha256 `{tok_sha}`. Documents are packed as `ids </s> ids </s>`, so `</s>` is the
token every document follows: the tokenizer names it as BOS too, and lm-eval prefixes loglikelihoods
with it, as the pipeline did.

## Training recipe

{_table(recipe)}

Settings hash: `{prov["settings_hash"]}` (sha256 of all model and training settings of the run).

## Results

Validation and test loss of the exported (best validation) checkpoint; lm-eval harness scores are
added when the harness job finishes.

{_results_section(eval_results)}

## Provenance

```json
{json.dumps(prov, indent=1, default=str)}
```

## How to load

{load_section(f"{run}/model", bool(load_kwargs))}

Reproduce the harness scores with the stock lm-eval command (from the results' parent folder):

`{STOCK_LM_EVAL.replace("<run>", run)}`
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def set_document_prefix(model_dir: str | os.PathLike) -> None:
    """Name ``</s>`` as the saved tokenizer's BOS, and its id as ``bos_token_id`` of the saved config and
    generation config, so that every reader agrees (why: module docstring)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.bos_token = tokenizer.eos_token
    tokenizer.save_pretrained(model_dir)
    for name in ("config.json", "generation_config.json"):
        path = Path(model_dir) / name
        if path.is_file():
            config = json.loads(path.read_text())
            if "bos_token_id" in config:
                config["bos_token_id"] = tokenizer.eos_token_id
                path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def finish_model_dir(model_dir: str | os.PathLike, **card_args) -> Path:
    """Make a freshly saved model folder ready for stock tools and the Hub: the tokenizer's document
    prefix and the model card (:func:`build_card`'s arguments). Returns the card's path."""
    set_document_prefix(model_dir)
    saved = json.loads((Path(model_dir) / "config.json").read_text())
    return _save(build_card(**card_args, saved_config=saved), model_dir)


def add_harness_scores(model_dir: str | os.PathLike, harness_json: str | os.PathLike) -> Path | None:
    """Put ``harness.json``'s scores into the card's ``model-index`` and results table (replacing earlier
    harness scores). A model folder without a card (saved before cards existed) is left alone."""
    from huggingface_hub import ModelCard

    path = Path(model_dir) / CARD
    if not path.is_file():
        return None
    card = ModelCard.load(path)
    harness = json.loads(Path(harness_json).read_text())["results"]
    kept = [r for r in (card.data.eval_results or []) if r.source_name != HARNESS_SOURCE]
    fresh = _eval_results({}, harness)
    card.data.eval_results = kept + fresh
    start, end = card.text.find(RESULTS_START), card.text.find(RESULTS_END)
    if start >= 0 and end > start:
        card.text = card.text[:start] + _results_section(kept + fresh) + card.text[end + len(RESULTS_END) :]
    return _save(card, model_dir)
