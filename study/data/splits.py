"""The splits a study trains and judges on, read through the cache and loaded onto the device.

A validation split holds images back from the search: trials are judged on it, and the test
set is kept for the end. It is the data set's own val/ folder when it has one (train/, val/,
test/), else, with a validation fraction F > 0, a stratified, seeded F of each class of the
training set. Both at once is refused: the val/ folder already is the held-out part.
Verbs: `read` decodes files into memory through the cache, `load` puts images on the device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from catdog.cache import DecodeProgress, is_cached, warn_skipped
from catdog.classes import REPORT_FOLDERS
from catdog.dataset import DatasetError, DatasetLayout, find_dataset
from catdog.names import printable
from catdog.scan import DatasetScan, read_dataset
from catdog.train import DeviceImages
from study.data.source import DataSource, cache_dir_for


@dataclass(frozen=True)
class DeviceSplits:
    """A study's images on the training device, loaded once per worker process."""

    train: DeviceImages
    test: DeviceImages
    description: str  # the data source's description, stored on every trial
    class_names: tuple[str, ...]  # each class's label, in label order (catdog.classes)
    val: DeviceImages | None = None  # the val/ folder, or held out with --val-fraction > 0

    @property
    def eval_split(self) -> str:
        """Which set judges each epoch: "val" when there is a validation part, else "test"."""
        return "test" if self.val is None else "val"

    @property
    def eval(self) -> DeviceImages:
        """The set that judges each epoch (and the objective)."""
        return self.test if self.val is None else self.val


def dataset_layout(source: DataSource, val_fraction: float = 0.0) -> DatasetLayout:
    """The source's split folders and classes, from folder names alone (nothing is decoded).

    DatasetError as catdog.dataset.find_dataset raises it, and for a validation fraction asked
    of a set that has its own val/ folder."""
    layout = find_dataset(source.root)
    if layout.val is not None and val_fraction > 0:
        raise DatasetError(
            f"{printable(layout.root)} has its own validation split, {layout.val}/, which "
            f"judges the trials: --val-fraction {val_fraction:g} would hold out another; leave "
            f"--val-fraction out, or move {layout.val}/ away to split {layout.train}/ instead"
        )
    return layout


def eval_split_of(layout: DatasetLayout, val_fraction: float) -> str:
    """Which set judges the trials: "val" (the val/ folder or a held-out fraction) or "test"."""
    return "val" if layout.val is not None or val_fraction > 0 else "test"


def read_data(source: DataSource, on_decoded: DecodeProgress | None = None) -> DatasetScan:
    """Every split decoded (or read from the cache) at the source's size, with every file left
    out and why: what `data check` shows and training loads. on_decoded: how far decoding has
    got, for a set that is not in the cache yet."""
    layout = find_dataset(source.root)
    return read_dataset(layout, source.image_size, cache_dir_for(layout.root), on_decoded)


def check_data(
    source: DataSource,
    *,
    val_fraction: float = 0.0,
    seed: int = 0,
    echo: Callable[[str], None] = print,
    on_decoded: DecodeProgress | None = None,
) -> int:
    """Read both splits once before a run changes anything; returns how many images they hold.

    DatasetError when a class has no usable image or a validation part would be left without
    one, and as dataset_layout raises it; a warning naming each file left out. A set read for
    the first time is decoded into the cache here, so that every worker of every later run
    reads it back from there.
    """
    layout = dataset_layout(source, val_fraction)
    cache_dir = cache_dir_for(layout.root)
    size = source.image_size
    if not all(is_cached(layout.root / split, size, cache_dir) for split in layout.splits):
        echo(
            f"decoding {printable(layout.root)} at {size} px once for all workers and runs, "
            f"into {printable(cache_dir)}"
        )
    scan = read_data(source, on_decoded)
    scan.require_every_class()
    if val_fraction > 0:
        validation_split(scan.splits[layout.train].labels, val_fraction, seed, layout.classes)
    for image_set in scan.splits.values():
        warn_skipped(image_set.skipped)
    return sum(len(image_set.labels) for image_set in scan.splits.values())


def load_splits(
    source: DataSource, device: torch.device, *, val_fraction: float = 0.0, seed: int = 0
) -> DeviceSplits:
    """Every split read and moved to `device` (after check_data: no file is warned about again).

    The data set's val/ folder is the validation split when it has one; else with
    val_fraction > 0 the training set is split into a training and a validation part (see
    validation_split), seeded by `seed`.
    """
    layout = dataset_layout(source, val_fraction)
    scan = read_data(source)
    scan.require_every_class()
    train_set, test_set = scan.splits[layout.train], scan.splits[layout.test]
    val_set = scan.splits[layout.val] if layout.val is not None else None
    if val_fraction > 0:
        train_index, val_index = validation_split(
            train_set.labels, val_fraction, seed, layout.classes
        )
        train_set, val_set = train_set.subset(train_index), train_set.subset(val_index)
    return DeviceSplits(
        train=DeviceImages.from_image_set(train_set, device),
        test=DeviceImages.from_image_set(test_set, device),
        description=source.description,
        class_names=layout.labels,
        val=None if val_set is None else DeviceImages.from_image_set(val_set, device),
    )


def validation_split(
    labels: torch.Tensor, fraction: float, seed: int, classes: Sequence[str] = REPORT_FOLDERS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (training part, validation part) of a stratified split seeded by `seed`.

    labels: (N,) int64. Each class gives round(fraction * its size) images, drawn at random, to
    the validation part. Both index lists are ascending, so the training part keeps the
    class-sorted file order that shuffle=false trains in. DatasetError when a part would be
    left without an image of some class (named from `classes`, the class folders).
    """
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        count = round(fraction * len(members))
        if not 0 < count < len(members):
            name = printable(classes[label])
            raise DatasetError(
                f"--val-fraction {fraction:g} of the {len(members)} {name} training images "
                f"leaves {count} for validation and {len(members) - count} for training; "
                "each part needs at least one"
            )
        order = torch.randperm(len(members), generator=generator)
        held_out.append(members[order[:count]])
    val_index = torch.cat(held_out).sort().values
    in_training = torch.ones(len(labels), dtype=torch.bool)
    in_training[val_index] = False
    return in_training.nonzero().flatten(), val_index
