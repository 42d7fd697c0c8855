"""One training run: data loaders, model, Lightning Trainer with checkpoints, early stopping,
TensorBoard/CSV logs and CodeCarbon; then test from the best checkpoint, export with
`save_pretrained` and write `metrics.json`."""

from __future__ import annotations

import datetime
import logging
import os
import time

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from archbench.data.loader import make_dataloader
from archbench.io import atomic_dir, write_json
from archbench.models import CONFIG_CLASSES, count_parameters, match_ffn_dim
from archbench.training.cluster import resume_checkpoint, trainer_plugins
from archbench.training.emissions import track_emissions
from archbench.training.module import CausalLMModule
from archbench.training.resume import ResumeState

log = logging.getLogger(__name__)


def model_kwargs(arch: str, settings: dict, vocab_size: int) -> dict:
    """The settings the architecture's config class knows, plus vocabulary and context length.

    With `match_params`, the Transformer / LongNet FFN is sized to RetNet's parameter count, so the
    comparison is at matched size (the grid's `ffn_dim` is RetNet's).
    """
    def known(name: str) -> dict:
        fields = CONFIG_CLASSES[name]().to_dict()
        kwargs = {k: v for k, v in settings.items() if k in fields and v is not None}
        return {**kwargs, "vocab_size": vocab_size, "max_seq_len": settings["seq_len"]}

    kwargs = known(arch)
    if arch != "retnet" and settings.get("match_params"):
        kwargs["ffn_dim"] = match_ffn_dim(arch, **known("retnet"))
    return kwargs


def _trainer(settings: dict, run_dir: str, scratch_dir: str, max_steps: int | None,
             extra_callbacks: list) -> tuple[L.Trainer, ModelCheckpoint]:
    best = ModelCheckpoint(dirpath=os.path.join(scratch_dir, "best"), filename="step{step}-val{val_loss:.4f}",
                           monitor="val_loss", mode="min", save_top_k=settings["save_top_k"],
                           auto_insert_metric_name=False)
    minutes = settings.get("checkpoint_every_minutes")
    periodic = ModelCheckpoint(  # the resumable state: last.ckpt, rewritten every N steps or minutes
        dirpath=scratch_dir, save_top_k=0, save_last=True,
        every_n_train_steps=None if minutes else settings["checkpoint_every_n_steps"],
        train_time_interval=datetime.timedelta(minutes=minutes) if minutes else None,
    )
    callbacks = [best, periodic, *extra_callbacks]
    stop = settings["early_stopping"]
    if stop["enabled"]:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=stop["patience"],
                                       min_delta=stop["min_delta"], check_on_train_epoch_end=False))
    interval = settings["val_check_interval"]
    trainer = L.Trainer(
        accelerator=settings["accelerator"], devices=settings["devices"], num_nodes=settings["num_nodes"],
        precision=settings["precision"], max_steps=max_steps or -1, max_epochs=settings.get("epochs") or (-1 if max_steps else 1),
        val_check_interval=interval,
        # An integer interval counts batches across epochs, so it may exceed one epoch's batches.
        check_val_every_n_epoch=None if isinstance(interval, int) else 1,
        limit_val_batches=settings.get("limit_val_batches"),
        gradient_clip_val=settings.get("gradient_clip_val"),
        accumulate_grad_batches=settings["accumulate_grad_batches"],
        log_every_n_steps=settings["log_every_n_steps"], num_sanity_val_steps=0,
        callbacks=callbacks, enable_model_summary=False,
        plugins=trainer_plugins(settings),  # Slurm: who launches the processes, requeue on SIGURG
        logger=[TensorBoardLogger(run_dir, name="logs", version="tensorboard"),
                CSVLogger(run_dir, name="logs", version="csv")],
        default_root_dir=scratch_dir,
    )
    return trainer, best


def train_run(arch: str, seed: int, settings: dict, tokens: dict, tokenizer_dir: str, run_dir: str,
              scratch_dir: str, emissions: dict | None = None, threads: int | None = None,
              callbacks: list | None = None) -> dict:
    """Train `arch` with `settings` (flat model + training keys, see config/schema.yaml) and write
    `run_dir/{model/, logs/, metrics.json, emissions.csv}`. Resumes from `scratch_dir/last.ckpt`."""
    from transformers import AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(seed, workers=True)
    os.makedirs(run_dir, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    kwargs = model_kwargs(arch, settings, vocab_size=len(tokenizer))
    kwargs.update(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id)
    module = CausalLMModule(arch, kwargs, learning_rate=settings["learning_rate"],
                            weight_decay=settings["weight_decay"], betas=settings["betas"],
                            warmup_steps=settings["warmup_steps"])

    # issue 15 hook: training.tokens_per_param sets max_steps from the model's size (scaling ladders)
    from archbench.report.scaling import budget_steps
    budget = budget_steps(settings, count_parameters(module.model, include_embeddings=False))
    settings = {**settings, "max_steps": budget} if budget else settings
    seq_len, batch_size = settings["seq_len"], settings["batch_size"]
    loader = lambda split, shuffle: make_dataloader(  # noqa: E731
        tokens[split], seq_len, batch_size, shuffle=shuffle, seed=seed,
        num_workers=settings["num_workers"], drop_last=shuffle)
    train_loader, val_loader, test_loader = loader("train", True), loader("validation", False), loader("test", False)

    last = resume_checkpoint(scratch_dir)  # last.ckpt, or a newer hpc_ckpt_N.ckpt from a Slurm requeue
    csv_log = os.path.join(run_dir, "logs", "csv", "metrics.csv")
    history = None
    if last:
        log.warning("resuming %s from %s", run_dir, last)
        # Lightning's CSVLogger deletes an existing metrics.csv: keep the rows logged before the kill.
        history = pd.read_csv(csv_log) if os.path.exists(csv_log) else None
    resume = ResumeState(train_loader.sampler, batch_size)
    trainer, best = _trainer(settings, run_dir, scratch_dir, settings.get("max_steps"),
                             [resume, *(callbacks or [])])

    em = emissions or {}
    with track_emissions(run_dir, em.get("enabled", True), em.get("country_iso_code", "USA")) as carbon:
        start = time.perf_counter()
        trainer.fit(module, train_loader, val_loader, ckpt_path=last)
        session_time = time.perf_counter() - start
    resumed_from = resume.resumed_from_step

    # Evaluate the exported weights: the best checkpoint by val_loss (the final weights if no
    # validation ran), so val/test numbers describe exactly the model that is saved.
    if best.best_model_path and os.path.exists(best.best_model_path):  # a resumed, finished run may name a replaced one
        module.load_state_dict(torch.load(best.best_model_path, map_location="cpu", weights_only=False)["state_dict"])
    val_loss = trainer.validate(module, val_loader, verbose=False)[0]["val_loss"]
    test_loss = trainer.test(module, test_loader, verbose=False)[0]["test_loss"]

    if not trainer.is_global_zero:  # several processes (DDP): one writes, or their renames collide
        return {}
    if history is not None and os.path.exists(csv_log):
        merged = pd.concat([history[history["step"] < resumed_from], pd.read_csv(csv_log)], ignore_index=True)
        merged.to_csv(csv_log, index=False)
    with atomic_dir(os.path.join(run_dir, "model")) as tmp:
        module.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    world = trainer.world_size
    steps_here = trainer.global_step - resumed_from
    tokens_per_step = batch_size * settings["accumulate_grad_batches"] * seq_len * world
    metrics = {
        "arch": arch, "seed": seed,
        "hparams": {k: settings[k] for k in sorted(settings)},
        "model_config": kwargs,
        "params_total": count_parameters(module.model, include_embeddings=True),
        "params_non_embedding": count_parameters(module.model, include_embeddings=False),
        "global_step": trainer.global_step, "resumed_from_step": resumed_from,
        "epochs_completed": trainer.current_epoch,
        "early_stopped": bool(trainer.should_stop and trainer.global_step < (settings.get("max_steps") or 0)),
        "tokens_seen": trainer.global_step * tokens_per_step,
        "train_time_s": resume.train_time(),  # summed over restarts
        "tokens_per_s": steps_here * tokens_per_step / session_time if session_time > 0 else None,
        "val_loss": val_loss, "val_ppl": float(torch.tensor(val_loss).exp()),
        "best_val_loss": float(best.best_model_score) if best.best_model_score is not None else val_loss,
        "test_loss": test_loss, "test_ppl": float(torch.tensor(test_loss).exp()),
        "uniform_loss": float(torch.tensor(float(len(tokenizer))).log()),
        "best_checkpoint": best.best_model_path or None,
        "device": str(trainer.strategy.root_device), "world_size": world, "threads": torch.get_num_threads(),
        **carbon,
    }
    write_json(metrics, os.path.join(run_dir, "metrics.json"))
    return metrics
