"""Record learning curves: train every configuration of a grid to the last epoch, no pruning.

    python -m benchmarks.search.record --data storage/data/dogs-cats-dev-2000 --image-size 128 \
        --out benchmarks/search/recordings/dev-2000-128px.json --seeds 0 1

The grid is optimizer x lr x shuffle (x seed); everything else is the report's recipe
(TrainConfig's defaults: batch 128, constant lr, 2 degrees and a flip). Training is the
product's own (catdog.train.train on splits read by study.data.splits.load_splits) in the
precision the product would pick (`--precision auto`). Each finished run is written to the
recording at once; running the command again skips the runs it holds.

`--val-fraction F` holds out the product's stratified F of each training class (split seed 0,
as `optimize --val-fraction F --seed 0`): runs train on the rest and every epoch is scored on
both the validation part and the test set, so that replays can select trials on either.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.search.recording import Recording, Run, load_recording, log_grid
from catdog.config import TrainConfig
from catdog.device import choose_precision, configure, resolve_device
from catdog.train import TrainingDiverged, evaluate, train
from study.data.source import data_source
from study.data.splits import load_splits
from study.settings import DEFAULT_MAX_EPOCHS
from study.space.builtin import LR_RANGE

SEARCHED = ("optimizer", "lr", "shuffle", "epochs")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    configure(device)
    source = data_source(Path(args.data), args.image_size)
    splits = load_splits(source, device, val_fraction=args.val_fraction, seed=0)
    lrs = args.lrs or log_grid(*LR_RANGE, per_decade=args.per_decade)
    out = Path(args.out)
    if out.exists():
        recording = load_recording(out)
        check_same_setup(recording, args, len(splits.train), len(splits.test))
        if recording.meta.get("val_fraction", 0.0) != args.val_fraction:
            raise SystemExit(
                f"Error: {out} was recorded with --val-fraction "
                f"{recording.meta.get('val_fraction', 0.0)}, not {args.val_fraction}"
            )
        precision = recording.meta["precision"]
    else:
        precision = choose_precision(args.precision, device).precision
        recording = Recording(
            new_meta(args, device, precision, len(splits.train), len(splits.test))
        )
        if splits.val is not None:
            recording.meta["val_fraction"] = args.val_fraction
            recording.meta["val_images"] = len(splits.val)
    grid = [
        (optimizer, lr, shuffle, seed)
        for seed in args.seeds
        for shuffle in args.shuffle  # shuffle on first: the useful half if stopped early
        for optimizer in args.optimizers
        for lr in lrs
    ]
    todo = [g for g in grid if recording.find(*g) is None]
    print(
        f"{len(grid)} runs of {args.max_epochs} epochs on {source.description} "
        f"({len(splits.train)} training, {len(splits.test)} test images), {device}, "
        f"{precision}; {len(grid) - len(todo)} already recorded in {out}",
        flush=True,
    )
    for number, (optimizer, lr, shuffle, seed) in enumerate(todo, 1):
        started = time.perf_counter()
        run = record_run(optimizer, lr, shuffle, seed, args.max_epochs, splits, precision)
        recording.runs.append(run)
        recording.meta["recorded_seconds"] = round(sum(sum(r.seconds) for r in recording.runs), 1)
        recording.save(out)
        ended = f"diverged in epoch {run.diverged_in_epoch}" if run.diverged_in_epoch else ""
        print(
            f"[{number}/{len(todo)}] {optimizer} lr {lr:g} shuffle {'on' if shuffle else 'off'} "
            f"seed {seed}: test acc {run.test_accuracy[-1] if run.epochs else float('nan'):.3f} "
            f"(best {max(run.test_accuracy, default=float('nan')):.3f}) {ended} "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return 0


def record_run(
    optimizer: str, lr: float, shuffle: bool, seed: int, epochs: int, splits, precision: str
) -> Run:
    config = TrainConfig(optimizer=optimizer, lr=lr, shuffle=shuffle, epochs=epochs)
    history = []  # filled epoch by epoch, so a divergence keeps the epochs before it
    tested = []  # with a validation part: (test loss, test accuracy) after each epoch

    def on_epoch(metrics, state) -> None:
        history.append(metrics)
        if splits.val is not None:
            tested.append(evaluate(state.model, splits.test, precision))

    diverged = None
    try:
        train(config, splits.train, splits.eval, precision=precision, seed=seed, on_epoch=on_epoch)
    except TrainingDiverged:
        diverged = len(history) + 1  # train() raises before the callback sees that epoch
    if splits.val is not None:
        return Run(
            optimizer=optimizer,
            lr=lr,
            shuffle=shuffle,
            seed=seed,
            train_loss=[m.train_loss for m in history],
            train_accuracy=[m.train_accuracy for m in history],
            test_loss=[loss for loss, _ in tested],
            test_accuracy=[accuracy for _, accuracy in tested],
            seconds=[round(m.seconds, 3) for m in history],
            diverged_in_epoch=diverged,
            val_loss=[m.eval_loss for m in history],
            val_accuracy=[m.eval_accuracy for m in history],
        )
    return Run(
        optimizer=optimizer,
        lr=lr,
        shuffle=shuffle,
        seed=seed,
        train_loss=[m.train_loss for m in history],
        train_accuracy=[m.train_accuracy for m in history],
        test_loss=[m.eval_loss for m in history],
        test_accuracy=[m.eval_accuracy for m in history],
        seconds=[round(m.seconds, 3) for m in history],
        diverged_in_epoch=diverged,
    )


def new_meta(args, device, precision: str, n_train: int, n_test: int) -> dict:
    recipe = {k: v for k, v in TrainConfig().to_dict().items() if k not in SEARCHED}
    return {
        "data": args.label or Path(args.data).name,
        "data_path": str(args.data),
        "train_images": n_train,
        "test_images": n_test,
        "image_size": args.image_size,
        "device": describe_device(device),
        "precision": precision,
        "max_epochs": args.max_epochs,
        "recipe": recipe,
        "torch": torch.__version__,
        "commit": _git_commit(),
        "started": datetime.date.today().isoformat(),
    }


def check_same_setup(recording: Recording, args, n_train: int, n_test: int) -> None:
    meta = recording.meta
    wanted = {
        "image_size": args.image_size,
        "max_epochs": args.max_epochs,
        "train_images": n_train,
        "test_images": n_test,
    }
    different = {k: (meta[k], v) for k, v in wanted.items() if meta[k] != v}
    if different:
        raise SystemExit(f"Error: {args.out} was recorded with other settings: {different}")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)"


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="data set folder (Kaggle layout)")
    parser.add_argument("--label", help="name of the data set in the recording")
    parser.add_argument("--image-size", type=int, required=True)
    parser.add_argument("--out", required=True, help="recording JSON (continued if it exists)")
    parser.add_argument("--max-epochs", type=int, default=DEFAULT_MAX_EPOCHS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    parser.add_argument(
        "--shuffle", nargs="+", default=["on", "off"], choices=["on", "off"], help="on, off"
    )
    parser.add_argument("--lrs", type=float, nargs="+", help="default: a log grid over the space")
    parser.add_argument("--per-decade", type=int, default=4, help="grid points per decade of lr")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="hold out this fraction of each training class (split seed 0); score it and the "
        "test set every epoch",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args(argv)
    args.shuffle = [value == "on" for value in args.shuffle]
    return args


if __name__ == "__main__":
    sys.exit(main())
