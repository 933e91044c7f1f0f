"""Probe fused training on a GPU in a few minutes, on random images (torch and this project only).

Measured in this order, the most important first, within --budget seconds (a step that no
longer fits is skipped and says so; a watchdog ends the process GRACE_S past the budget, the
JSON already written after every step):

  alone    one trial, the project's own training epoch (catdog.train): images/s with ReLU after
           the pool (this project) and before it (the report's order)
  widths   for K = 1, 2, 4, 8, 16 and 32 (a K whose block-1 activations would pass 2^31
           elements is skipped, with why): the fused trainer's aggregate training images/s with
           every convolution grouped (its first epoch's extra seconds: the autotuning a new
           width costs), each block's convolution grouped and split (forward and backward, best
           of 3), training with every convolution split, with each block the faster way, and
           that again in the report's ReLU order; the peak memory
  nan      at the largest K measured: member 0 starts with a NaN weight; the other members'
           losses and their weights after one epoch against a run without it
  kernels  the top kernels by device time in one epoch at K = 1 and K = 16 (torch.profiler)
  compile  torch.compile of the fused network at K = 8 beside eager, a bare training step, in
           a child process stopped at what is left of the budget

Writes OUT/fused_probe.json, OUT/kernels.txt and OUT/compile.log: 3 of the 8 files a device
run returns (tools/outputs.py).

    python3 tools/fused_probe.py --out "$OUT"                     # on a GPU: 256 px, bf16
    .venv/bin/python tools/fused_probe.py --device cpu --tiny --out /tmp/probe   # anywhere
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project, not installed

from child import run_with_deadline  # noqa: E402 - tools/child.py, beside this script
from machine import environment  # noqa: E402

from catdog.config import TrainConfig  # noqa: E402
from catdog.device import DeviceError, configure, resolve_device  # noqa: E402
from catdog.fused import FusedCNN, FusedTrainer  # noqa: E402
from catdog.fused.choose import widest  # noqa: E402
from catdog.fused.measure import (  # noqa: E402
    EpochRate,
    fastest_split,
    random_images,
    timed,
    training_rate,
)
from catdog.fused.model import member_input  # noqa: E402
from catdog.model import CatDogCNN, report_order  # noqa: E402
from catdog.train import DeviceImages, autocast, new_state, train_epoch  # noqa: E402

GRACE_S = 15  # past the budget, the watchdog ends the process
BLOCKS = 6


@dataclass(frozen=True)
class Plan:
    image_size: int
    batch_size: int
    precision: str
    widths: tuple[int, ...]
    steps: int  # training steps per measured epoch
    profile_widths: tuple[int, ...]
    compile_width: int
    compile_backend: str  # "inductor" generates kernels; "eager" only captures (a quick check)
    reserve_s: float  # what the widths leave for nan, kernels and compile
    compile_min_s: float  # compile is skipped with less left


PLANS = {
    "full": Plan(256, 128, "bf16", (1, 2, 4, 8, 16, 32), 4, (1, 16), 8, "inductor", 60, 40),
    "tiny": Plan(64, 4, "bf16", (1, 2), 2, (1, 2), 2, "eager", 10, 5),
}


def _seconds(text: str) -> float:
    """--budget: a number of seconds above 0."""
    seconds = float(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the 3 files")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", type=_seconds, default=420, help="seconds for all steps")
    parser.add_argument("--tiny", action="store_true", help="64 px, K = 1 and 2: a quick check")
    # Internal: compile_step in a child process, at this width with this layout ("100000").
    parser.add_argument("--compile-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--split", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    plan = PLANS["tiny" if args.tiny else "full"]
    try:  # a GPU that is not there is one line, not a CUDA driver traceback
        device = resolve_device(args.device)
    except DeviceError as error:
        parser.error(f"{error} (--device cpu --tiny checks the steps without one)")
    configure(device)  # cuDNN autotuning on, as training has it
    if args.compile_child is not None:
        layout = tuple(c == "1" for c in args.split) if args.split else False
        found = compile_step(device, plan, args.width, layout)
        print(json.dumps(found), flush=True)
        _write_json(args.compile_child, found)
        return
    deadline = time.monotonic() + args.budget
    watchdog = threading.Timer(args.budget + GRACE_S, _overrun)
    watchdog.daemon = True
    watchdog.start()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"environment": environment(args.device), "plan": asdict(plan)}
    report["budget_s"] = args.budget

    def save() -> None:
        report["seconds"] = round(args.budget - (deadline - time.monotonic()), 1)
        _write_json(args.out / "fused_probe.json", report)

    def left() -> float:
        return deadline - time.monotonic()

    save()
    images = random_images(device, plan.image_size, plan.steps * plan.batch_size)
    report["alone"] = alone(images, plan)
    save()
    widths = report["widths"] = {}
    for width in plan.widths:
        if left() < plan.reserve_s:
            widths[str(width)] = {"skipped": f"{left():.0f} s of the budget left"}
        else:
            widths[str(width)] = width_step(images, width, plan)
        report["summary"] = summary(report)
        save()
    measured = [int(k) for k, v in widths.items() if "training" in v and "error" not in v]
    if measured:
        largest = max(measured)
        layout = _layout(widths[str(largest)])
        report["nan"] = _guarded(lambda: nan_step(images, largest, plan, layout))
        save()
        kernels, tables = {}, []
        for wanted in plan.profile_widths:
            width = max([k for k in measured if k <= wanted], default=1)
            kernels[str(width)] = _guarded(
                lambda width=width: kernels_step(images, width, plan, tables)
            )
        report["kernels"] = kernels
        (args.out / "kernels.txt").write_text("\n\n".join(tables) + "\n")
        save()
    width = max([k for k in measured if k <= plan.compile_width], default=1)
    allowed = left() - 5
    if allowed < plan.compile_min_s:
        report["compile"] = {"skipped": f"{left():.0f} s of the budget left"}
    else:
        layout = _layout(widths.get(str(width), {}))
        report["compile"] = run_compile(args, plan, width, layout, allowed)
    save()
    watchdog.cancel()
    print(json.dumps(report.get("summary", {}), indent=2), flush=True)


def alone(images: DeviceImages, plan: Plan) -> dict:
    """One trial's training epoch (catdog.train), ReLU after the pool and before it."""
    config = TrainConfig(batch_size=plan.batch_size, epochs=2)
    device = images.images.device
    found = {}
    for name, reorder in (("relu_after_pool", False), ("relu_before_pool", True)):
        state = new_state(config, images, seed=0)
        if reorder:
            state.model.features = report_order(state.model.features)

        def epoch(state=state) -> None:
            train_epoch(state, config, images, plan.precision)

        first, seconds = timed(device, epoch), timed(device, epoch)
        found[name] = _rate(EpochRate(1, len(images) / seconds, first, seconds, None))
    return found


def width_step(images: DeviceImages, width: int, plan: Plan) -> dict:
    """Everything the widths step measures at one K (module docstring)."""
    most = widest(plan.image_size, plan.batch_size)
    if width > most:
        return {
            "skipped": f"a block-1 activation would pass 2^31 elements (at most K={most} at "
            f"batch {plan.batch_size}, {plan.image_size} px)"
        }
    found: dict = {"training": {}}
    rate = rate_at(images, width, plan)
    try:
        # First, as training meets a new width: all grouped, its autotuning in the first epoch.
        found["training"]["grouped"] = _rate(rate((False,) * BLOCKS))
        fastest = (False,) * BLOCKS
        if width > 1:
            started = time.monotonic()
            fastest, seconds = fastest_split(
                width,
                image_size=plan.image_size,
                batch_size=plan.batch_size,
                precision=plan.precision,
                device=images.images.device,
            )
            found["convolution_ms"] = [
                {way: round(1000 * s, 3) for way, s in block.items()} for block in seconds
            ]
            found["convolution_timing_s"] = round(time.monotonic() - started, 1)
            found["training"]["split"] = _rate(rate((True,) * BLOCKS))
            found["training"]["fastest"] = _rate(rate(fastest))
        found["split_blocks"] = [i + 1 for i, split in enumerate(fastest) if split]
        with report_block_order():
            found["training"]["fastest_relu_before_pool"] = _rate(rate(fastest))
    except RuntimeError as error:  # torch.OutOfMemoryError among them: keep what was measured
        found["error"] = _first_line(error)
    finally:
        _release(images.images.device)
    return found


def rate_at(images: DeviceImages, width: int, plan: Plan):
    """layout -> the fused trainer's EpochRate at this width with that layout."""

    def rate(layout: tuple[bool, ...]) -> EpochRate:
        return training_rate(
            images, width, plan.batch_size, plan.precision, split_layers={width: layout}
        )

    return rate


def nan_step(images: DeviceImages, width: int, plan: Plan, layout: tuple[bool, ...]) -> dict:
    """One epoch of `width` members, with and without a NaN in member 0's first weight."""
    config = TrainConfig(batch_size=plan.batch_size, epochs=2)

    def run(poisoned: bool) -> tuple[list[float], list[dict[str, torch.Tensor]]]:
        trainer = FusedTrainer(
            images,
            images,
            slots=width,
            batch_size=plan.batch_size,
            precision=plan.precision,
            split_layers={width: layout},
        )
        for slot in range(width):
            resume = None
            if poisoned and slot == 0:
                resume = new_state(config, images, seed=slot).state_dict()
                resume["model"]["features.0.weight"][0, 0, 0, 0] = float("nan")
            trainer.start(slot, config, seed=slot, resume=resume)
        losses = [loss for loss, _ in trainer.train_epoch()]
        return losses, [trainer.member_state(k).model.state_dict() for k in range(width)]

    clean_losses, clean = run(False)
    losses, poisoned = run(True)
    difference = max(
        (
            (poisoned[k][name].float() - tensor.float()).abs().max().item()
            for k in range(1, width)
            for name, tensor in clean[k].items()
            if tensor.is_floating_point()
        ),
        default=0.0,
    )
    others = losses[1:]
    return {
        "width": width,
        "member_0_loss": losses[0],
        "others_finite": all(math.isfinite(loss) for loss in others),
        "others_losses_equal": others == clean_losses[1:],
        "others_largest_weight_difference": difference,
        "untouched": all(math.isfinite(loss) for loss in others) and difference == 0.0,
    }


def kernels_step(images: DeviceImages, width: int, plan: Plan, tables: list[str]) -> list[dict]:
    """The top kernels by self device time (CPU time off CUDA) in one training epoch."""
    from torch.profiler import ProfilerActivity, profile

    device = images.images.device
    trainer = FusedTrainer(
        images, images, slots=width, batch_size=plan.batch_size, precision=plan.precision
    )
    for slot in range(width):
        trainer.start(slot, TrainConfig(batch_size=plan.batch_size, epochs=2), seed=slot)
    trainer.train_epoch()  # warm-up: autotuned, allocated
    activities = [ProfilerActivity.CPU]
    key = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
        key = "self_device_time_total"
    with profile(activities=activities) as profiler:
        timed(device, trainer.train_epoch)
    events = profiler.key_averages()
    tables.append(f"K={width}, sorted by {key}\n" + events.table(sort_by=key, row_limit=20))
    total = sum(getattr(e, key) for e in events) or 1.0
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:12]
    _release(device)
    return [
        {
            "name": e.key[:100],
            "ms": round(getattr(e, key) / 1000, 3),
            "share": round(getattr(e, key) / total, 3),
            "calls": e.count,
        }
        for e in top
    ]


def run_compile(
    args: argparse.Namespace, plan: Plan, width: int, layout: tuple[bool, ...], allowed: float
) -> dict:
    """compile_step in a child process (a compile cannot be stopped in this one)."""
    result_path = Path(tempfile.gettempdir()) / f"fused_probe-compile-{os.getpid()}.json"
    command = [sys.executable, __file__, "--out", str(args.out), "--device", args.device]
    command += ["--compile-child", str(result_path), "--width", str(width)]
    command += ["--split", "".join("01"[s] for s in layout)]
    command += ["--tiny"] if args.tiny else []
    with open(args.out / "compile.log", "w") as log:
        status, seconds = run_with_deadline(command, log, allowed)
    found: dict = {"width": width, "exit_status": status, "seconds": round(seconds, 1)}
    if status is None:
        found["stopped_after_s"] = round(allowed)
    if result_path.exists():
        found.update(json.loads(result_path.read_text()))
        result_path.unlink()
    return found


def compile_step(
    device: torch.device, plan: Plan, width: int, layout: tuple[bool, ...] | bool
) -> dict:
    """A bare fused training step of `width` members, eager and compiled: images/s."""
    batch = plan.batch_size
    torch.manual_seed(0)
    members = [
        CatDogCNN(plan.image_size).to(device, memory_format=torch.channels_last).state_dict()
        for _ in range(width)
    ]
    fused = FusedCNN.from_members(members, plan.image_size, split_convolutions=layout)
    optimizer = torch.optim.SGD(fused.parameters(), lr=1e-3, momentum=0.9)
    pixels = torch.rand(width * batch, 3, plan.image_size, plan.image_size, device=device)
    inputs = member_input(pixels, width, plan.precision)
    labels = torch.randint(0, 2, (width * batch,), device=device)

    def step(model) -> None:
        with autocast(device, plan.precision):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()

    def rate(model, repeats: int = 5) -> float:
        step(model)  # warm
        seconds = timed(device, lambda: [step(model) for _ in range(repeats)])
        return width * batch * repeats / seconds

    found = {"backend": plan.compile_backend, "eager_images_per_second": round(rate(fused))}
    compiled = torch.compile(fused, backend=plan.compile_backend)
    found["compile_s"] = round(timed(device, lambda: step(compiled)), 1)
    found["compiled_images_per_second"] = round(rate(compiled))
    found["compiled_over_eager"] = round(
        found["compiled_images_per_second"] / found["eager_images_per_second"], 3
    )
    return found


def summary(report: dict) -> dict:
    """Aggregate images/s of the fastest layout by K, against one trial alone."""
    alone_rate = report["alone"]["relu_after_pool"]["images_per_second"]
    rows = {}
    for width, found in report["widths"].items():
        training = found.get("training", {})
        best = training.get("fastest") or training.get("grouped")
        if best is None:
            continue
        row = {"images_per_second": best["images_per_second"]}
        row["over_alone"] = round(best["images_per_second"] / alone_rate, 2)
        old = training.get("fastest_relu_before_pool")
        if old:
            row["relu_after_pool_gain"] = round(
                best["images_per_second"] / old["images_per_second"], 3
            )
        rows[width] = row
    top = max(rows.values(), key=lambda r: r["images_per_second"], default=None)
    return {
        "alone_images_per_second": alone_rate,
        "by_K": rows,
        "best_over_alone": top and top["over_alone"],
        "target_4x_alone_met": bool(top and top["over_alone"] >= 4),
    }


@contextlib.contextmanager
def report_block_order():
    """Fused networks built inside (FusedCNN.from_members) take the report's ReLU order."""
    original = FusedCNN.__dict__["from_members"]
    build = original.__func__

    def from_members(cls, *args, **kwargs):
        fused = build(cls, *args, **kwargs)
        fused.features = report_order(fused.features)
        return fused

    FusedCNN.from_members = classmethod(from_members)
    try:
        yield
    finally:
        FusedCNN.from_members = original


def _rate(rate: EpochRate) -> dict:
    peak = rate.peak_bytes
    return {
        "images_per_second": round(rate.images_per_second),
        "first_epoch_s": round(rate.first_epoch_s, 3),
        "epoch_s": round(rate.epoch_s, 3),
        "autotune_s": round(rate.autotune_s, 3),
        "peak_gib": None if peak is None else round(peak / 2**30, 2),
    }


def _layout(found: dict) -> tuple[bool, ...]:
    blocks = set(found.get("split_blocks", []))
    return tuple(i + 1 in blocks for i in range(BLOCKS))


def _guarded(work) -> dict | list:
    try:
        return work()
    except RuntimeError as error:
        return {"error": _first_line(error)}


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _write_json(path: Path, data: dict) -> None:
    """Whole or not at all: the watchdog may end the process at any moment."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


def _overrun() -> None:
    print(f"fused_probe: past its budget by {GRACE_S} s; stopping", flush=True)
    os._exit(3)


if __name__ == "__main__":
    main()
