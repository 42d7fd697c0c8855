"""The LightningModule: next-token loss on packed windows, AdamW with warm-up + cosine decay.

The module holds the math; checkpointing, precision, devices and logging belong to the Trainer
(see `run.py`).
"""

from __future__ import annotations

import math

import lightning as L
import torch

from archbench.data.sources import training_targets
from archbench.models import build_model
from archbench.models.common import lm_loss


class CausalLMModule(L.LightningModule):
    """Wraps an archbench HF model. Batches are int64 windows [B, seq_len + 1]: x = w[:, :-1], y = w[:, 1:]."""

    def __init__(
        self,
        arch: str,
        model_kwargs: dict,
        learning_rate: float,
        weight_decay: float = 0.0,
        betas=(0.9, 0.98),
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.1,
        answer_keys: list[int] | None = None,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(arch, **model_kwargs)
        if gradient_checkpointing:  # recompute each block in backward: the same gradients, less memory
            self.model.activation_checkpointing_enable()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits  # no decoding state to compute

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        x, y = batch[:, :-1], batch[:, 1:]
        y = training_targets(x, y, self.hparams)  # the data source's hook (MQAR: only answers count)
        return lm_loss(self(x), y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.log("lr", self.lr_schedulers().get_last_lr()[0], on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._loss(batch)
        # Every window has seq_len targets, so the batch-size-weighted mean Lightning computes over
        # the epoch is the exact per-token mean (with answer_keys, the mean over batches of answers).
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=batch.size(0), sync_dist=True)

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch), on_epoch=True, batch_size=batch.size(0), sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        # No weight decay on biases, norms and embeddings (1-D params and the token table).
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "embed" in name else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp.learning_rate,
            betas=tuple(hp.betas),
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(hp.warmup_steps, total)

        def lr_lambda(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return hp.min_lr_ratio + (1 - hp.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
