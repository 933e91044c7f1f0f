"""A recording: every epoch's train/test loss and accuracy of a grid of training runs, as JSON.

A recording made with a validation part (`record --val-fraction F`) also holds each epoch's
validation loss and accuracy: its runs trained on the rest of the training set.

One run is one (optimizer, lr, shuffle, seed) trained for `max_epochs` epochs with a constant
learning rate and no pruning, so an n-epoch trial of the same configuration and seed is exactly
the run's first n epochs. The file is rewritten (atomically) after each finished run, so a
recording can be stopped and continued.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catdog.atomic import atomic_write

FORMAT = 1


@dataclass(frozen=True)
class Run:
    optimizer: str
    lr: float
    shuffle: bool
    seed: int
    # One value per finished epoch; accuracy is a fraction.
    train_loss: list[float]
    train_accuracy: list[float]
    test_loss: list[float]
    test_accuracy: list[float]
    seconds: list[float]  # wall time of each epoch (training plus evaluation)
    diverged_in_epoch: int | None = None  # the epoch whose loss was not finite; not in the lists
    # With a validation part (meta "val_fraction" > 0): each epoch's loss and accuracy on the
    # part held out of the training set; test_* are then the test set's, scored every epoch too,
    # so that a replay can select on one and read the other.
    val_loss: list[float] | None = None
    val_accuracy: list[float] | None = None

    @property
    def key(self) -> tuple[str, float, bool, int]:
        return run_key(self.optimizer, self.lr, self.shuffle, self.seed)

    @property
    def epochs(self) -> int:
        return len(self.test_loss)


def run_key(optimizer: str, lr: float, shuffle: bool, seed: int) -> tuple[str, float, bool, int]:
    # lr rounded so that a value written to JSON and read back finds its run again
    return (optimizer, float(f"{lr:.6g}"), bool(shuffle), int(seed))


@dataclass
class Recording:
    meta: dict[str, Any]  # data, image_size, device, precision, max_epochs, recipe, ...
    runs: list[Run] = field(default_factory=list)

    @property
    def max_epochs(self) -> int:
        return int(self.meta["max_epochs"])

    def find(self, optimizer: str, lr: float, shuffle: bool, seed: int) -> Run | None:
        wanted = run_key(optimizer, lr, shuffle, seed)
        return next((run for run in self.runs if run.key == wanted), None)

    def grid_lrs(self, optimizer: str, shuffle: bool) -> list[float]:
        """The recorded learning rates of one optimizer and shuffle setting, ascending."""
        runs = self.runs
        return sorted({r.lr for r in runs if r.optimizer == optimizer and r.shuffle == shuffle})

    def seeds(self) -> list[int]:
        return sorted({run.seed for run in self.runs})

    def seeds_of(self, optimizer: str, lr: float, shuffle: bool) -> list[int]:
        key = run_key(optimizer, lr, shuffle, 0)[:3]
        return sorted(run.seed for run in self.runs if run.key[:3] == key)

    def snap_lr(self, optimizer: str, shuffle: bool, lr: float) -> float:
        """The recorded lr nearest to `lr` in log space (ties go to the smaller one)."""
        grid = self.grid_lrs(optimizer, shuffle)
        if not grid:
            raise KeyError(f"the recording has no run of {optimizer} with shuffle={shuffle}")
        return min(grid, key=lambda g: (abs(math.log(g) - math.log(lr)), g))

    @property
    def has_validation(self) -> bool:
        return float(self.meta.get("val_fraction", 0.0)) > 0

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "meta": self.meta, "runs": [asdict(r) for r in self.runs]}

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as temporary:
            temporary.write_text(self.to_json())

    def to_json(self) -> str:
        """The meta block indented, then one line per run: diffs show which runs changed."""
        runs = ",\n".join("  " + json.dumps(asdict(run)) for run in self.runs)
        meta = json.dumps(self.meta, indent=2).replace("\n", "\n ")
        return f'{{\n "format": {FORMAT},\n "meta": {meta},\n "runs": [\n{runs}\n ]\n}}\n'


def load_recording(path: Path) -> Recording:
    values = json.loads(Path(path).read_text())
    if values.get("format") != FORMAT:
        raise ValueError(f"{path}: recording format {values.get('format')!r}, expected {FORMAT}")
    return Recording(values["meta"], [Run(**run) for run in values["runs"]])


def log_grid(low: float, high: float, per_decade: int) -> list[float]:
    """Learning rates at 10^(k/per_decade) from `low` up to below `high`, then `high` itself.

    With per_decade=4 and [1e-4, 0.3]: 1e-4, 1.78e-4, 3.16e-4, ..., 0.1, 0.178, 0.3; the
    report's 0.1 and 0.01 are points of it.
    """
    first = round(math.log10(low) * per_decade)
    values = []
    k = first
    while 10 ** (k / per_decade) < high * (1 - 1e-9):
        values.append(float(f"{10 ** (k / per_decade):.6g}"))
        k += 1
    return values + [float(f"{high:.6g}")]
