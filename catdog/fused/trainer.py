"""Train up to K trials at once as one FusedCNN, one epoch at a time, each exactly as alone.

Each member keeps what makes it its own run: its seed and weight initialisation, its generator
(its batch order and augmentation draws), its optimizer, schedule, label smoothing, epoch count
and history. Members share the data, the batch size and the precision. Per step, the K batches
are gathered as one (K, B) index, augmented in one warp (catdog.augment.augment_members) and
run through the fused network; the loss is the sum of the members' mean cross-entropies, so
each member's gradient is the one it would get alone, and each member's own optimizer steps its
parameters, which are views into the fused network's tensors.

A slot is filled with `start` and emptied with `stop`, or by run_epoch when the member's last
epoch is done, its on_epoch callback raised (pruning) or its loss diverged. Membership changes
take effect at the next epoch: the fused network is rebuilt with the active members side by
side (K' groups for K' members), so an empty slot costs nothing. Usage:

    trainer = FusedTrainer(train_data, eval_data, slots=4, batch_size=128, precision="bf16")
    trainer.start(0, config, seed=7, on_epoch=report)        # report(metrics, state), as train()
    while trainer.active_slots:
        for result in trainer.run_epoch():                    # one MemberEpoch per member
            if result.ended:
                ...                                           # result.state: its final TrainState
        for slot in trainer.free_slots:
            trainer.start(slot, next_config, next_seed)       # joins at the next epoch
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from catdog.augment import AugmentPlan, augment_members, to_float
from catdog.config import TrainConfig
from catdog.fused.model import FusedCNN, member_input, member_view, shared_input
from catdog.train import (
    DeviceImages,
    EpochCallback,
    EpochMetrics,
    TrainState,
    autocast,
    batch_order,
    diverged,
    eval_batch_size,
    new_state,
    steps_per_epoch,
)


@dataclass(frozen=True)
class MemberEpoch:
    """What run_epoch did for the member in one slot."""

    slot: int
    metrics: EpochMetrics
    state: TrainState  # the member's state after the epoch (as train()'s on_epoch sees it)
    ended: bool  # the slot is free now: last epoch done, on_epoch raised, or diverged
    error: Exception | None = None  # what ended it early: on_epoch's exception, TrainingDiverged


@dataclass
class _Member:
    config: TrainConfig
    # model: the member's own copy of its tensors, refreshed after every training epoch, for
    # the callback to checkpoint or evaluate; optimizer, schedule, generator: the live ones.
    state: TrainState
    parameters: list[nn.Parameter]  # what its optimizer steps; views into the fused network
    on_epoch: EpochCallback | None


class FusedTrainer:
    """Up to `slots` members trained together; see the module docstring."""

    def __init__(
        self,
        train_data: DeviceImages,
        eval_data: DeviceImages,
        *,
        slots: int,
        batch_size: int,
        precision: str = "fp32",
        round_up: bool = False,
        split_layers: Mapping[int, Sequence[bool]] | None = None,
    ) -> None:
        """round_up: lay the fused network out for the active members rounded up to a power of
        two (at most `slots`), the extra groups computed and thrown away, so that the network
        takes a few widths (1, 2, 4, ...) instead of every one from `slots` down to 1 as the
        last trials end: a GPU with cudnn.benchmark autotunes its convolutions once per width.
        The members train exactly as without it.

        split_layers: by width, which blocks' convolutions run split (one bool per block, as
        catdog.fused.choose measured them); a width not in it takes the entry of the largest
        width below it, and without one the device's default (FusedCNN.from_members)."""
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.train_data, self.eval_data = train_data, eval_data
        self.batch_size, self.precision = batch_size, precision
        self.device = train_data.images.device
        self.round_up = round_up
        self.split_layers = dict(split_layers or {})
        self.widths: list[int] = []  # groups of each fused network laid out, in order
        self._slots: list[_Member | None] = [None] * slots
        self._fused: FusedCNN | None = None  # None: to be rebuilt for the active members
        self._grads: list[torch.Tensor] = []
        self._plan: AugmentPlan | None = None
        self._keep: float | torch.Tensor = 1.0  # 1 - label smoothing, per member
        self._share: float | torch.Tensor = 0.0  # label smoothing / classes, per member

    @property
    def slots(self) -> int:
        return len(self._slots)

    @property
    def active_slots(self) -> list[int]:
        return [slot for slot, member in enumerate(self._slots) if member is not None]

    @property
    def free_slots(self) -> list[int]:
        return [slot for slot, member in enumerate(self._slots) if member is None]

    def start(
        self,
        slot: int,
        config: TrainConfig,
        seed: int,
        *,
        on_epoch: EpochCallback | None = None,
        resume: dict[str, Any] | None = None,
    ) -> TrainState:
        """Put a new member in a free slot; it trains from the next run_epoch on.

        Its weights, optimizer, schedule and generator are exactly new_state(config, train_data,
        seed)'s; `resume` (a TrainState.state_dict()) continues an earlier run, as in train().
        """
        if self._slots[slot] is not None:
            raise ValueError(f"slot {slot} is in use")
        if config.batch_size != self.batch_size:
            raise ValueError(
                f"members share the batch size {self.batch_size}; this one has {config.batch_size}"
            )
        state = new_state(config, self.train_data, seed)
        if resume is not None:
            state.load_state_dict(resume)
            if len(state.history) >= config.epochs:
                raise ValueError(f"this run has done all its {config.epochs} epochs already")
        # The optimizer's state is keyed to the model's Parameter objects: they stay its, and
        # become views into the fused network (_layout). The state's model becomes a copy that
        # owns its tensors, so that what a caller saves or evaluates is this member's alone.
        parameters = list(state.model.parameters())
        state.model = copy.deepcopy(state.model)
        self._slots[slot] = _Member(config, state, parameters, on_epoch)
        self._fused = None
        return state

    def stop(self, slot: int) -> TrainState:
        """Empty a slot; returns the member's state after its last finished epoch."""
        member = self._slots[slot]
        if member is None:
            raise ValueError(f"slot {slot} is empty")
        self._slots[slot] = None
        self._fused = None
        with torch.no_grad():
            for parameter in member.parameters:  # no longer views into the other members' tensors
                parameter.data = parameter.data.clone()
                parameter.grad = None
        return member.state

    def member_state(self, slot: int) -> TrainState:
        """The state of the member in a slot after its last finished epoch."""
        member = self._slots[slot]
        if member is None:
            raise ValueError(f"slot {slot} is empty")
        return member.state

    def run_epoch(self) -> list[MemberEpoch]:
        """One epoch of training and evaluation for every active member, then its on_epoch.

        A member whose callback raises an Exception (pruning) or whose loss is not finite ends
        there, and its slot is freed; the others go on. A BaseException such as
        KeyboardInterrupt stops the whole call: every member's state then holds the epoch.
        Each member's metrics.seconds is the wall time of the whole fused epoch.
        """
        members = self._active()
        started = time.perf_counter()
        trained = self.train_epoch()
        evaluated = self.evaluate(self.eval_data)
        seconds = time.perf_counter() - started
        epochs = []
        for (slot, member), (train_loss, train_acc), (eval_loss, eval_acc) in zip(
            members, trained, evaluated, strict=True
        ):
            epoch = len(member.state.history) + 1
            metrics = EpochMetrics(epoch, train_loss, train_acc, eval_loss, eval_acc, seconds)
            finite = math.isfinite(train_loss) and math.isfinite(eval_loss)
            if finite:
                member.state.history.append(metrics)
            error = None if finite else diverged(member.config, metrics)
            epochs.append((slot, member, metrics, error))
        results = []
        for slot, member, metrics, error in epochs:
            if error is None and member.on_epoch is not None:
                try:
                    member.on_epoch(metrics, member.state)
                except Exception as raised:  # noqa: BLE001 - the member's outcome, not ours
                    error = raised
            ended = error is not None or metrics.epoch >= member.config.epochs
            if ended:
                self.stop(slot)
            results.append(MemberEpoch(slot, metrics, member.state, ended, error))
        return results

    def train_epoch(self) -> list[tuple[float, float]]:
        """One pass over the training images for every active member: (mean loss, accuracy)
        per member, in slot order."""
        fused = self._layout()
        members = [member for _, member in self._active()]
        count, batch, data = len(self.train_data), self.batch_size, self.train_data
        fused.train()
        # Each member's order from its own generator, drawn at the start of its epoch as alone.
        order = torch.stack(
            [batch_order(count, m.config.shuffle, m.state.generator) for m in members]
        )  # (K, N)
        generators = [member.state.generator for member in members]
        loss_sum = torch.zeros(len(members), device=self.device)
        correct = torch.zeros(len(members), dtype=torch.int64, device=self.device)
        steps, seen = steps_per_epoch(count, batch), 0
        for step in range(steps):
            index = order[:, step * batch : (step + 1) * batch]  # (K, b)
            images = data.images[index.flatten()]  # (K*b, 3, S, S) uint8, one gather
            labels = data.labels[index]  # (K, b)
            pixels = self._padded(augment_members(images, self._plan, generators), len(members))
            losses, logits = self._step(
                members, member_input(pixels, fused.members, self.precision), labels
            )
            loss_sum += losses * index.shape[1]
            correct += (logits.argmax(dim=-1) == labels).sum(dim=1)
            seen += index.shape[1]
        self._refresh_models(members, steps)
        return _means(loss_sum, correct, seen)

    def _step(
        self, members: list[_Member], images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of every member on prepared inputs (B, K*3, S, S) and labels
        (K, B); returns each member's loss (K,) and logits (K, B, N classes), detached."""
        with autocast(self.device, self.precision):
            logits = self._fused(images)[: len(members)]  # a padded layout's extra groups: out
        losses = self._losses(logits.float(), labels)
        # The members' .grad are views into these: zeroed in place, and backward adds into them.
        torch._foreach_zero_(self._grads)
        losses.sum().backward()
        for member in members:
            member.state.optimizer.step()
            member.state.schedule.step()
        return losses.detach(), logits.detach()

    def _losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Each member's mean cross-entropy with its own label smoothing, (K,), computed as
        F.cross_entropy computes it: (1 - s) * nll + smooth * (s / classes)."""
        log_p = F.log_softmax(logits, dim=-1)  # (K, B, N classes)
        nll = -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean(dim=1)
        if isinstance(self._share, float) and self._share == 0.0:
            return nll
        smooth = -log_p.sum(dim=-1).mean(dim=1)
        return self._keep * nll + smooth * self._share

    def evaluate(self, data: DeviceImages) -> list[tuple[float, float]]:
        """(mean cross-entropy, accuracy) on un-augmented images for every active member, in
        slot order: one fused forward pass per batch, as evaluate() gives them one by one."""
        self._layout()  # outside inference mode: its tensors are trained later
        return self._evaluate(data)

    @torch.inference_mode()
    def _evaluate(self, data: DeviceImages) -> list[tuple[float, float]]:
        fused = self._fused
        members = fused.members
        fused.eval()
        loss_sum = torch.zeros(members, device=self.device)
        correct = torch.zeros(members, dtype=torch.int64, device=self.device)
        # evaluate()'s batch holds about 16 M pixels of one member; K members share it.
        batch = max(1, eval_batch_size(data.image_size) // members)
        for start in range(0, len(data), batch):
            pixels = to_float(data.images[start : start + batch])
            labels = data.labels[start : start + batch].expand(members, -1)  # (K, b)
            with autocast(self.device, self.precision):
                logits = fused(shared_input(pixels, members, self.precision))
            log_p = F.log_softmax(logits.float(), dim=-1)
            loss_sum -= log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum(dim=1)
            correct += (logits.argmax(dim=-1) == labels).sum(dim=1)
        active = len(self._active())  # a padded layout's extra groups: out
        return _means(loss_sum[:active], correct[:active], len(data))

    def _active(self) -> list[tuple[int, _Member]]:
        return [(slot, member) for slot, member in enumerate(self._slots) if member is not None]

    def _layout(self) -> FusedCNN:
        """The fused network of the active members (in slot order), rebuilt after a change."""
        if self._fused is not None:
            return self._fused
        members = [member for _, member in self._active()]
        if not members:
            raise ValueError("no member to train: start one first")
        names = [name for name, _ in members[0].state.model.named_parameters()]
        tensors = []
        for member in members:
            own = member.state.model.state_dict()  # its buffers, refreshed after every epoch
            own.update(zip(names, member.parameters, strict=True))  # its live weights
            tensors.append(own)
        width = _round_up(len(members), self.slots) if self.round_up else len(members)
        tensors += [tensors[-1]] * (width - len(members))  # extra groups: copies, never read
        fused = FusedCNN.from_members(
            tensors, self.train_data.image_size, split_convolutions=self._split(width)
        )
        self.widths.append(width)
        fused_parameters = dict(fused.named_parameters())
        for parameter in fused_parameters.values():
            parameter.grad = torch.zeros_like(parameter)
        with torch.no_grad():
            for k, member in enumerate(members):
                for name, parameter in zip(names, member.parameters, strict=True):
                    fused_parameter = fused_parameters[name]
                    parameter.data = member_view(fused_parameter.data, name, width, k)
                    parameter.grad = member_view(fused_parameter.grad, name, width, k)
        self._grads = [parameter.grad for parameter in fused_parameters.values()]
        self._plan = AugmentPlan.build([m.config.augmentation for m in members], self.device)
        smoothing = [m.config.label_smoothing for m in members]
        self._keep = self._per_member([1 - s for s in smoothing])
        classes = self.train_data.num_classes
        self._share = self._per_member([s / classes for s in smoothing])
        self._fused = fused
        return fused

    def _split(self, width: int) -> Sequence[bool] | None:
        below = [known for known in self.split_layers if known <= width]
        return self.split_layers[max(below)] if below else None

    def _padded(self, pixels: torch.Tensor, members: int) -> torch.Tensor:
        """The members' augmented batches (K*b, 3, S, S), with the first one repeated for a
        padded layout's extra groups (their outputs are thrown away)."""
        extra = self._fused.members - members
        if not extra:
            return pixels
        first = pixels[: len(pixels) // members]
        return torch.cat([pixels, first.repeat(extra, 1, 1, 1)])

    def _per_member(self, values: list[float]) -> float | torch.Tensor:
        """A Python float when all members agree (as a single run has it), else (K,) float32."""
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def _refresh_models(self, members: list[_Member], steps: int) -> None:
        """Copy each member's weights and BatchNorm statistics into its own model, and count
        its steps in num_batches_tracked as its BatchNorm layers would have alone."""
        fused = self._fused
        targets, sources = [], []
        for k, member in enumerate(members):
            views = fused.member_state_dict(k)
            for name, tensor in member.state.model.state_dict().items():
                if name.endswith("num_batches_tracked"):
                    tensor += steps
                else:
                    targets.append(tensor)
                    sources.append(views[name])
        torch._foreach_copy_(targets, sources)


def _round_up(members: int, slots: int) -> int:
    """The power of two at or above `members`, at most `slots`."""
    return min(slots, 1 << (members - 1).bit_length())


def _means(loss_sum: torch.Tensor, correct: torch.Tensor, count: int) -> list[tuple[float, float]]:
    """Per member (mean loss, accuracy) from (K,) sums: the epoch's one wait for the device."""
    sums = zip(loss_sum.tolist(), correct.tolist(), strict=True)
    return [(loss / count, right / count) for loss, right in sums]
