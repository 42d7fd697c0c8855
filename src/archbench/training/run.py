"""One training run, top to bottom (`train_run`): model, data loaders, Lightning Trainer with
checkpoints, early stopping, TensorBoard/CSV logs and CodeCarbon; fit (resuming from the scratch
directory's newest checkpoint); evaluate the best checkpoint; export with `save_pretrained`; write
`metrics.json`. Every rank runs it; rank 0 alone writes the outputs."""

from __future__ import annotations

import datetime
import json
import logging
import math
import os

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from archbench.data.loader import make_dataloader
from archbench.devices import require_device
from archbench.io import atomic_dir, write_json
from archbench.logs import adopt
from archbench.models import count_parameters
from archbench.models.flops import budget_steps, train_flops_per_token
from archbench.models.hybrid import is_hybrid, pure
from archbench.models.matching import matched
from archbench.models.sizing import config_fields
from archbench.provenance import machine_load, now, provenance_block, timing_flag, token_index_paths
from archbench.training.cluster import resume_checkpoint, trainer_plugins, trainer_strategy
from archbench.training.emissions import track_emissions
from archbench.training.failures import RankFailures
from archbench.training.loggers import trainer_logging
from archbench.training.modelcard import finish_model_dir
from archbench.training.module import CausalLMModule
from archbench.training.resume import AtomicCheckpointIO, ResumeState, claim_scratch, run_identity
from archbench.training.timing import FinalValidation, StepTimer

log = logging.getLogger(__name__)


def model_kwargs(arch: str, settings: dict, vocab_size: int) -> dict:
    """The settings the architecture's config class knows, plus vocabulary and context length.

    With `match_params`, the architecture's width knob (registry `width_knob`: the FFN for the
    Transformers, the SSM state size for Mamba-2) is sized to the parameter count of `match_to`
    (default retnet) built from the same settings, so the comparison is at matched size (the grid's
    `ffn_dim` is the reference's); `match_by: layers` matches the layer count instead (registry
    `blocks_per_layer`: two Mamba-2 blocks per layer). `match: flops` turns the width knob to the
    reference's training FLOPs per token instead (models/matching.py). The reference is the pure model
    (without `attention_every` / `attention_layers`): a hybrid of the reference architecture itself is
    matched to it too, so every point of a hybrid-ratio sweep has the pure model's size.
    """

    def known(name: str) -> dict:
        fields = config_fields(name)
        kwargs = {k: v for k, v in settings.items() if k in fields and v is not None}
        return {**kwargs, "vocab_size": vocab_size, "max_seq_len": settings["seq_len"]}

    kwargs = known(arch)
    reference = settings["match_to"]  # the model settings' defaults are the schema's (model.*)
    quantity = settings["match"]  # model.match: flops matches compute, and turns matching on
    if (settings["match_params"] or quantity == "flops") and (arch != reference or is_hybrid(kwargs)):
        accelerator = str(settings["accelerator"])
        gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
        by = settings["match_by"]
        ref = pure(known(reference))
        kwargs = matched(arch, kwargs, reference, ref, by, quantity, "cuda" if gpu else "cpu")
    return kwargs


def build_module(arch: str, settings: dict, tokenizer) -> tuple[CausalLMModule, dict]:
    """The LightningModule and the model config it was built from (recorded in metrics.json)."""
    kwargs = model_kwargs(arch, settings, vocab_size=len(tokenizer))
    kwargs.update(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    module = CausalLMModule(
        arch,
        kwargs,
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        betas=settings["betas"],
        warmup_steps=settings["warmup_steps"],
        answer_keys=settings.get("answer_keys"),
        gradient_checkpointing=settings["gradient_checkpointing"],
    )
    return module, kwargs


def build_loaders(tokens: dict, settings: dict, seed: int) -> dict:
    """train (shuffled, full batches only), validation and test loaders; each shards itself over ranks."""

    def loader(split, shuffle):
        return make_dataloader(
            tokens[split],
            settings["seq_len"],
            settings["batch_size"],
            shuffle=shuffle,
            seed=seed,
            num_workers=settings["num_workers"],
            drop_last=shuffle,
        )

    return {"train": loader("train", True), "validation": loader("validation", False), "test": loader("test", False)}


def build_trainer(settings: dict, run_dir: str, scratch_dir: str, extra_callbacks: list) -> tuple[L.Trainer, dict]:
    """The Trainer and the callbacks the run reads back (`best` checkpoint, `early_stopping` or None)."""
    best = ModelCheckpoint(
        dirpath=os.path.join(scratch_dir, "best"),
        filename="step{step}-val{val_loss:.4f}",
        monitor="val_loss",
        mode="min",
        save_top_k=settings["save_top_k"],
        auto_insert_metric_name=False,
    )
    minutes = settings.get("checkpoint_every_minutes")
    periodic = ModelCheckpoint(  # the resumable state: last.ckpt, rewritten every N steps or minutes
        dirpath=scratch_dir,
        save_top_k=0,
        save_last=True,
        every_n_train_steps=None if minutes else settings["checkpoint_every_n_steps"],
        train_time_interval=datetime.timedelta(minutes=minutes) if minutes else None,
    )
    stop = settings["early_stopping"]
    early = (
        EarlyStopping(
            monitor="val_loss",
            mode="min",
            patience=stop["patience"],
            min_delta=stop["min_delta"],
            check_on_train_epoch_end=False,
        )
        if stop["enabled"]
        else None
    )
    max_steps, interval = settings.get("max_steps"), settings["val_check_interval"]
    trainer = L.Trainer(
        accelerator=settings["accelerator"],
        devices=settings["devices"],
        num_nodes=settings["num_nodes"],
        precision=settings["precision"],
        max_steps=max_steps or -1,
        max_epochs=settings.get("epochs") or (-1 if max_steps else 1),
        val_check_interval=interval,
        # An integer interval counts batches across epochs, so it may exceed one epoch's batches.
        check_val_every_n_epoch=None if isinstance(interval, int) else 1,
        limit_val_batches=settings.get("limit_val_batches"),
        gradient_clip_val=settings.get("gradient_clip_val"),
        accumulate_grad_batches=settings["accumulate_grad_batches"],
        log_every_n_steps=settings["log_every_n_steps"],
        num_sanity_val_steps=0,
        # FinalValidation: validate (and so checkpoint) at the last step too, not only at multiples of the interval
        callbacks=[best, periodic, *([early] if early else []), FinalValidation(), *extra_callbacks],
        enable_model_summary=False,
        # Slurm: who launches the processes, requeue on SIGURG; checkpoints written atomically.
        plugins=[*trainer_plugins(settings), AtomicCheckpointIO()],
        strategy=trainer_strategy(settings),  # DDP with training.dist_timeout_s when several processes
        # Our samplers deal the global order over the ranks themselves (exact resume at any world size).
        use_distributed_sampler=False,
        **trainer_logging(settings, run_dir),  # training.loggers; log lines instead of a bar in job logs
        default_root_dir=scratch_dir,
    )
    return trainer, {"best": best, "early_stopping": early}


def evaluate_best(
    trainer: L.Trainer, module: CausalLMModule, best: ModelCheckpoint, loaders: dict
) -> tuple[float, float, int]:
    """Validation and test loss of the best checkpoint by val_loss (the final weights if no validation
    ran), so the numbers describe exactly the model that is exported, and that checkpoint's step."""
    step = trainer.global_step
    if best.best_model_path and os.path.exists(best.best_model_path):  # a resumed, finished run may name a replaced one
        ckpt = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(ckpt["state_dict"])
        step = int(ckpt["global_step"])
    val_loss = trainer.validate(module, loaders["validation"], verbose=False)[0]["val_loss"]
    test_loss = trainer.test(module, loaders["test"], verbose=False)[0]["test_loss"]
    return val_loss, test_loss, step


def bytes_per_token(tokens) -> float | None:
    """UTF-8 bytes of text per token of a split (its shards' tokenize metadata beside ``index.json``):
    turns nats per token into bits per byte. None when the split has no such metadata (a bare .bin)."""
    path = os.fspath(tokens)
    index = path if path.endswith("index.json") else os.path.join(path, "index.json")
    try:
        with open(index, encoding="utf-8") as fh:
            shards = json.load(fh)["shards"]
        metas = []
        for shard in shards:
            with open(os.path.join(os.path.dirname(index), f"{shard['name']}.json"), encoding="utf-8") as fh:
                metas.append(json.load(fh))
        n_bytes, n_tokens = sum(m["n_bytes"] for m in metas), sum(m["n_tokens"] for m in metas)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return n_bytes / n_tokens if n_tokens and n_bytes else None


def bits_per_byte(nats_per_token: float, per_token: float | None) -> float | None:
    """Bits per byte of text (the end-of-document token's loss included): tokenizer-independent quality."""
    return nats_per_token / math.log(2) / per_token if per_token else None


def keep_log_history(csv_log: str, history: pd.DataFrame | None, resumed_from: int) -> None:
    """Lightning's CSVLogger deletes an existing metrics.csv: put back the rows logged before the kill."""
    if history is not None and os.path.exists(csv_log):
        merged = pd.concat([history[history["step"] < resumed_from], pd.read_csv(csv_log)], ignore_index=True)
        merged.to_csv(csv_log, index=False)


def train_run(
    arch: str,
    seed: int,
    settings: dict,
    tokens: dict,
    tokenizer_dir: str,
    run_dir: str,
    scratch_dir: str,
    emissions: dict | None = None,
    threads: int | None = None,
    callbacks: list | None = None,
) -> dict:
    """Train `arch` with `settings` (flat model + training keys of a validated config: every key present,
    defaults from the schema, archbench/schema.yaml) and write
    `run_dir/{model/, logs/, metrics.json, emissions.csv}`. Resumes from `scratch_dir/last.ckpt`.
    `tokens` maps train/validation/test to what `make_dataloader` reads (index.json, split dir, .bin)."""
    from transformers import AutoTokenizer

    # 1. set-up: threads, seeds, tokenizer, model, data
    started = now()
    require_device("training.accelerator", settings["accelerator"])
    if threads:
        torch.set_num_threads(threads)
    adopt("lightning", "lightning.pytorch", "lightning.fabric")  # else its console prints "Seed set" twice
    L.seed_everything(seed, workers=True)
    os.makedirs(run_dir, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    module, kwargs = build_module(arch, settings, tokenizer)
    ident_settings = {**settings, "seed": seed}  # as the rule passes them (the budget follows from them)
    identity = run_identity(ident_settings, tokenizer_dir, tokens)
    # training.tokens_per_param sets max_steps from the model's size (scaling ladders)
    budget = budget_steps(settings, count_parameters(module.model, include_embeddings=False))
    settings = {**settings, "max_steps": budget} if budget else settings
    loaders = build_loaders(tokens, settings, seed)

    # 2. trainer, and the state to resume (last.ckpt, or a newer hpc_ckpt_N.ckpt from a Slurm requeue),
    # only if it is this run's: a changed setting, tokenizer or token data starts from step 0
    claim_scratch(scratch_dir, identity, ident_settings)
    last = resume_checkpoint(scratch_dir, identity)
    csv_log = os.path.join(run_dir, "logs", "csv", "metrics.csv")
    history = None
    if last:
        log.warning("resuming %s from %s", run_dir, last)
        history = pd.read_csv(csv_log) if os.path.exists(csv_log) else None
    resume, failures = ResumeState(loaders["train"].sampler, identity), RankFailures(scratch_dir)
    timer = StepTimer()
    trainer, watch = build_trainer(settings, run_dir, scratch_dir, [resume, failures, timer, *(callbacks or [])])

    # 3. fit, evaluate; a failing rank's traceback reaches the log whole, labelled with its rank
    em = emissions or {"enabled": False}  # the config's `emissions` section; None: not tracked
    with (
        failures.first_failure(trainer),
        track_emissions(run_dir, em["enabled"], em.get("country_iso_code")) as carbon,
    ):
        trainer.fit(module, loaders["train"], loaders["validation"], ckpt_path=last)
        load = machine_load()  # as training ended: the 1-minute average covers its last minute
        val_loss, test_loss, exported_step = evaluate_best(trainer, module, watch["best"], loaders)
    if not trainer.is_global_zero:  # several processes (DDP): one writes, or their renames collide
        return {}

    # 4. outputs: the loss curve across restarts, the model, metrics.json
    resumed_from = resume.resumed_from_step
    keep_log_history(csv_log, history, resumed_from)
    with atomic_dir(os.path.join(run_dir, "model")) as tmp:
        module.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        finish_model_dir(
            tmp,
            arch=arch,
            seed=seed,
            settings=settings,
            model=module.model,
            losses={"validation": val_loss, "test": test_loss},
            tokens=tokens,
            tokenizer_dir=tokenizer_dir,
            device=trainer.strategy.root_device,
            run_dir=run_dir,
        )

    world, seq_len = trainer.world_size, settings["seq_len"]
    tokens_per_step = settings["batch_size"] * settings["accumulate_grad_batches"] * seq_len * world
    early, best = watch["early_stopping"], watch["best"]
    flops_per_token = train_flops_per_token(arch, kwargs, seq_len, trainer.strategy.root_device.type)
    speed = timer.summary(settings["batch_size"] * seq_len * world)  # per batch: one micro-batch on every rank
    threads = torch.get_num_threads()
    val_bytes = bytes_per_token(tokens["validation"])
    metrics = {
        "arch": arch,
        "seed": seed,
        "hparams": {k: settings[k] for k in sorted(settings)},
        "model_config": kwargs,
        "params_total": count_parameters(module.model, include_embeddings=True),
        "params_non_embedding": count_parameters(module.model, include_embeddings=False),
        # Counts of the exported checkpoint (the best by val_loss; FinalValidation puts the last step among
        # the candidates); trained_steps is how far training went (later steps did not improve val_loss).
        "global_step": exported_step,
        "trained_steps": trainer.global_step,
        "resumed_from_step": resumed_from,
        "epochs_completed": trainer.current_epoch,
        "early_stopped": early is not None and early.stopping_reason != EarlyStoppingReason.NOT_STOPPED,
        "tokens_seen": exported_step * tokens_per_step,  # at the current world size
        "train_flops": exported_step * tokens_per_step * flops_per_token if flops_per_token else None,
        "train_time_s": resume.train_time(),  # summed over restarts
        # training steps of this session only (StepTimer): not validation, checkpoint writes, carbon tracking
        **speed,
        # the job's threads: every process of this node (DDP) runs `threads` of them
        "timing_flag": timing_flag(
            (load["load_avg"] or [None])[0],
            threads * max(1, trainer.num_devices),
            speed["train_step_ms_p10"],
            speed["train_step_ms_p90"],
        ),
        "val_loss": val_loss,
        "val_ppl": float(torch.tensor(val_loss).exp()),
        "best_val_loss": float(best.best_model_score) if best.best_model_score is not None else val_loss,
        "test_loss": test_loss,
        "test_ppl": float(torch.tensor(test_loss).exp()),
        "val_bytes_per_token": val_bytes,
        "val_bits_per_byte": bits_per_byte(val_loss, val_bytes),
        "test_bits_per_byte": bits_per_byte(test_loss, bytes_per_token(tokens["test"])),
        "uniform_loss": float(torch.tensor(float(len(tokenizer))).log()),
        "best_checkpoint": best.best_model_path or None,
        "device": str(trainer.strategy.root_device),
        "world_size": world,
        "world_sizes": resume.world_sizes,  # at the first start, then at every resume
        "threads": threads,
        "train_flops_per_token": flops_per_token,
        **carbon,
        "provenance": provenance_block(
            settings=settings,
            tokenizer_dir=tokenizer_dir,
            token_indexes=token_index_paths(tokens[s] for s in ("train", "validation", "test")),
            device=trainer.strategy.root_device,
            precision=str(settings["precision"]),
            started=started,
            load=load,
        ),
    }
    write_json(metrics, os.path.join(run_dir, "metrics.json"))
    return metrics
