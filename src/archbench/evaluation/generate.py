"""Readable samples from a saved run through ``model.generate()``: ``samples.txt`` and ``samples.csv``.

``samples.csv`` columns: timestamp (ISO 8601, UTC), architecture, prompt, completion (the original
study's layout) followed by the settings that produced it: do_sample, temperature, top_p, top_k,
max_new_tokens, seed. ``samples.txt`` holds the same, one block per prompt, for reading.

Each prompt is generated alone, after ``torch.manual_seed(seed + i)``: a completion depends only on
the model, its prompt and the settings, not on the other prompts or their order. Prompts are
preceded by ``</s>``, the document separator the model was trained with, so they read as the
start of a document. ``<pad>``, ``<s>`` and ``<unk>`` are never generated: training text never
contains them (byte-level BPE needs no ``<unk>``; documents are separated by ``</s>`` only).
"""

from __future__ import annotations

import csv
import datetime
import io
import os

import torch

from archbench.evaluation.common import EvalError, EvalRun, arch_of

DEFAULT_PROMPTS = ["The", "In the beginning", "Once upon a time", "It was a"]


@torch.inference_mode()
def complete(
    model,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 48,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
) -> str:
    """The text ``generate()`` appends to ``prompt`` (greedy unless ``do_sample``)."""
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    ids = torch.cat([torch.tensor([[tokenizer.eos_token_id]]), ids], 1).to(model.device)
    torch.manual_seed(seed)
    sampling = dict(temperature=temperature, top_p=top_p, top_k=top_k or None) if do_sample else {}
    never = [
        t
        for t in (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id)
        if t is not None and t != tokenizer.eos_token_id
    ]
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        suppress_tokens=never or None,
        **sampling,
    )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def run_generate(
    model_dir: str,
    out_txt: str | None,
    out_csv: str | None,
    prompts=None,
    max_new_tokens: int = 48,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "fp32",
    threads: int | None = None,
) -> list[dict]:
    """Complete every prompt with the model saved in ``model_dir``; write the two files; return rows."""
    prompts = list(DEFAULT_PROMPTS if prompts is None else prompts)
    if not prompts:
        raise EvalError("generate.prompts is empty: give at least one prompt")
    if do_sample and temperature <= 0:
        raise EvalError(f"generate.temperature must be > 0 when sampling, got {temperature}")
    with EvalRun("generate", locals()) as run:
        arch = arch_of(run.model)
        settings = {
            "do_sample": do_sample,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
        }
        rows = []
        for i, prompt in enumerate(prompts):
            text = complete(
                run.model, run.tokenizer, prompt, max_new_tokens, do_sample, temperature, top_p, top_k, seed + i
            )
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            rows.append({"timestamp": stamp, "architecture": arch, "prompt": prompt, "completion": text, **settings})
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        run.write_text("out_csv", table.getvalue())
        mode = f"sampling (temperature {temperature}, top_p {top_p}, top_k {top_k or 'off'})" if do_sample else "greedy"
        head = f"# {arch} — {os.path.abspath(model_dir)}\n# {mode}, {max_new_tokens} new tokens, seed {seed}\n"
        run.write_text(
            "out_txt", head + "".join(f"\n## {r['prompt']!r}\n{r['prompt']}{r['completion']}\n" for r in rows)
        )
    return rows


def show_samples(rows: list[dict]) -> None:
    """The CLI's display of generated samples: each prompt with its completion."""
    for row in rows:
        print(f"## {row['prompt']!r}\n{row['prompt']}{row['completion']}\n")
