"""`catdog-study data ...`: make, download and check data sets."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import click

from catdog.classes import describe_counts, imbalance, is_imbalanced, is_report_pair
from catdog.dataset import find_dataset
from catdog.names import printable
from catdog.synthetic import SHAPE_FOLDERS, SyntheticSpec, write_synthetic_dataset
from study.settings import REAL_DATA_DIR, SYNTHETIC_DIR

if TYPE_CHECKING:
    from catdog.cache import ImageSet


@click.group()
def data() -> None:
    """Make and inspect data sets."""


@data.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=SYNTHETIC_DIR,
    show_default=True,
    help="Folder to create (must not exist).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--train-per-class",
    default=SyntheticSpec.train_per_class,
    show_default=True,
    type=click.IntRange(min=1),
)
@click.option(
    "--test-per-class",
    default=SyntheticSpec.test_per_class,
    show_default=True,
    type=click.IntRange(min=1),
)
@click.option(
    "--photo-sized",
    is_flag=True,
    help="JPEGs as large as Kaggle's photos (long side 300-500 px) instead of 80-200 px high: "
    "for timing the classic PIL pipeline with `bench`.",
)
@click.option(
    "--classes",
    type=click.IntRange(2, len(SHAPE_FOLDERS)),
    default=2,
    show_default=True,
    help="2: cats/ (ellipses) and dogs/ (polygons), standing in for the report's set; 3: "
    "ellipses/, polygons/ and stars/, standing in for your own photos.",
)
def synth(
    out: Path,
    seed: int,
    train_per_class: int,
    test_per_class: int,
    photo_sized: bool,
    classes: int,
) -> None:
    """Write the SYNTHETIC set: ellipses vs polygons (or three shapes), not cats and dogs."""
    if out.exists():
        raise click.ClickException(f"{out} already exists; remove it or choose another --out")
    spec = SyntheticSpec(
        seed=seed,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        photo_sized=photo_sized,
        classes=classes,
    )
    write_synthetic_dataset(out, spec)
    size = "photo-sized JPEGs" if photo_sized else "small JPEGs"
    folders = "" if classes == 2 else f" in {', '.join(spec.class_folders)}"
    click.echo(
        f"wrote {classes * train_per_class} training and {classes * test_per_class} test images"
        f"{folders} (SYNTHETIC shapes, {size}, {spec.image_size} px by default) to {out}"
    )


@data.command()
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=REAL_DATA_DIR,
    show_default=True,
    help="Folder to create; optimize uses this one by default.",
)
def download(dest: Path) -> None:
    """Download the report's data from Kaggle into DEST.

    The data set is chetankv/dogs-cats-images (8 000 training and 2 000 test JPEGs). It needs
    a Kaggle API token (https://www.kaggle.com/settings/api) in KAGGLE_API_TOKEN or
    ~/.kaggle/access_token, or a legacy key in KAGGLE_USERNAME and KAGGLE_KEY or
    ~/.kaggle/kaggle.json. Does nothing when DEST already holds the data set.
    """
    from study.data.download import download_dataset

    download_dataset(dest, echo=click.echo)


@data.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=REAL_DATA_DIR)
@click.option(
    "--image-size",
    type=click.IntRange(min=64),
    default=None,
    help="Size to decode at, as training would. Default: 256 for real data, 64 for synthetic.",
)
@click.option("--strict", is_flag=True, help="Exit with an error when any file is skipped.")
def check(path: Path, image_size: int | None, strict: bool) -> None:
    """Scan the data set in PATH exactly as training reads it.

    Prints the classes, the usable images per split and class with their sizes, and every file
    that training will not use, with the reason; warns where a split's classes differ in size
    by more than 1.5 times. The decoded images are cached for training. PATH defaults to
    storage/data/dogs-cats-images.
    """
    from study.data.source import data_source  # torch: only when the command runs
    from study.data.splits import read_data

    layout = find_dataset(path)
    source = data_source(path, image_size)
    click.echo(
        f"reading {printable(layout.root)} at {source.image_size} px "
        "(decoded once, then cached for training)"
    )
    if not is_report_pair(layout.labels):
        click.echo(f"  {len(layout.classes)} classes: {', '.join(layout.labels)}")
    scan = read_data(source)
    for split, image_set in scan.splits.items():
        counts = scan.class_counts(split)
        click.echo(
            f"  {split}: {describe_counts(counts, layout.classes)} usable; "
            f"{len(image_set.skipped)} skipped, {len(image_set.ignored)} ignored"
        )
        if len(image_set):
            click.echo(f"    {_describe_sizes(image_set)}")
        if min(counts) > 0 and is_imbalanced(counts):  # an empty class is an error, below
            click.echo(
                f"    warning: its largest class has {imbalance(counts):.1f} times the images "
                "of its smallest: accuracy then flatters a model that favours the large "
                "classes; `report` adds each class's accuracy and balanced accuracy"
            )
    skipped = [item for image_set in scan.splits.values() for item in image_set.skipped]
    ignored = [item for image_set in scan.splits.values() for item in image_set.ignored]
    for heading, items in (
        ("skipped, not used for training", skipped),
        ("ignored, not part of the data set", ignored),
    ):
        if items:
            click.echo(f"{heading} ({len(items)}):")
            for item in sorted(items, key=lambda item: item.path):
                click.echo(f"  {printable(item.path)}: {item.reason}")
    scan.require_every_class()
    if strict and skipped:
        raise click.ClickException(
            f"{len(skipped)} file{'s' * (len(skipped) != 1)} skipped (--strict): "
            "repair or remove them"
        )
    if not skipped:
        click.echo("every image file is usable")


def _describe_sizes(image_set: ImageSet) -> str:
    """Pixel sizes of the usable images as stored (before squashing) and their bytes on disk."""
    from catdog.images import stored_size

    sizes = [stored_size(Path(p)) for p in image_set.paths]
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    megabytes = sum(Path(p).stat().st_size for p in image_set.paths) / 1e6
    return (
        f"{min(widths)}-{max(widths)} px wide, {min(heights)}-{max(heights)} px high "
        f"(median {statistics.median(widths):g}x{statistics.median(heights):g}), "
        f"{megabytes:.1f} MB"
    )
