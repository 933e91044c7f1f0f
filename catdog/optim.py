"""Optimizer and per-batch learning-rate schedule for a TrainConfig."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from catdog.config import TrainConfig


def build_optimizer(
    config: TrainConfig, parameters: Iterable[torch.nn.Parameter], device: torch.device
) -> torch.optim.Optimizer:
    params = list(parameters)
    # The fused CUDA kernels update all tensors in one launch; on CPU the defaults are fine.
    fused = {"fused": True} if device.type == "cuda" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
            **fused,
        )
    betas = (config.beta1, 0.999)
    if config.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=config.lr, betas=betas, weight_decay=config.weight_decay, **fused
        )
    return torch.optim.AdamW(
        params, lr=config.lr, betas=betas, weight_decay=config.weight_decay, **fused
    )


def build_schedule(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step multiplier of the peak lr: linear warm-up, then constant, cosine or one-cycle.

    one-cycle follows OneCycleLR's shape without its momentum cycling: a rise over the warm-up
    (30 % of training when no warm-up is set) then a cosine fall to 1/10 000 of the peak.
    """
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    if config.lr_schedule == "one-cycle" and warmup == 0:
        warmup = max(1, int(0.3 * total))
    floor = 1e-4 if config.lr_schedule == "one-cycle" else 0.0

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
