"""`catdog-study bench`: images/s of the classic pipeline, the project epoch, the bare step, and
with --fuse K of K trials trained as one fused network."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catdog.config import PRECISIONS
from study.commands.options import data_option, device_option
from study.settings import BENCH_BATCHES, BENCH_REPEATS, REAL_IMAGE_SIZE


@click.command()
@data_option
@click.option(
    "--image-size",
    type=click.IntRange(min=64),
    default=REAL_IMAGE_SIZE,
    show_default=True,
    help="Size in px that every pipeline trains at.",
)
@device_option
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Of the project's epoch, the bare step and the fused members; the classic pipeline "
    "is always fp32.",
)
@click.option(
    "--batches",
    type=click.IntRange(min=1),
    default=BENCH_BATCHES,
    show_default=True,
    help="Training batches of 128 per timed pass (at most the split's size); evaluation "
    "passes take as many test images.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=BENCH_REPEATS,
    show_default=True,
    help="Timed passes of each kind; figures are their median.",
)
@click.option(
    "--compile",
    is_flag=True,
    help="torch.compile the project's and the bare step's model (compile time is left out; "
    "the fused members are not compiled).",
)
@click.option(
    "--fuse",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also time K trials trained together as one fused network, reporting their "
    "aggregate images/s; 0: not timed.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures to this JSON file.",
)
def bench(
    data: str | None,
    image_size: int,
    device: str,
    precision: str,
    batches: int,
    repeats: int,
    compile: bool,
    fuse: int,
    json_path: Path | None,
) -> None:
    """Time the classic pipeline, this project's training epoch and the bare training step.

    classic: the report's ImageFolder + PIL transforms + DataLoader(batch 128), fp32.
    project: cached uint8 images on the device, device-side augmentation, chosen precision.
    bare: the same model and precision stepping on the same images, prepared on the device
    beforehand; the limit for the project.
    fused (--fuse K): K trials of the project's recipe trained and evaluated as one network;
    its figure is the aggregate (K x images/s), its ratios fused/bare and fused/project.
    Evaluation is timed the same way. Prints images/s and the ratios project/classic and
    project/bare; a benchmark for comparing, not a test.
    """
    # Imported here, not at the top: `catdog-study --help` must not load torch.
    from catdog.atomic import atomic_write
    from catdog.bench import run_bench
    from catdog.bench_result import BenchSettings, format_result
    from catdog.dataset import find_dataset_root
    from catdog.device import choose_precision, configure, resolve_device
    from study.data.source import cache_dir_for, resolve_data

    source = resolve_data(data, image_size, click.echo)
    target = resolve_device(device)
    configure(target)
    chosen = choose_precision(precision, target)
    click.echo(str(chosen))
    settings = BenchSettings(
        image_size=image_size,
        batches=batches,
        repeats=repeats,
        precision=chosen.precision,
        compile=compile,
        fuse=fuse,
    )
    result = run_bench(
        source.root,
        source.description,
        target,
        settings,
        cache_dir=cache_dir_for(find_dataset_root(source.root)),
        echo=click.echo,
    )
    click.echo(format_result(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(json_path) as temporary:
            temporary.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        click.echo(f"figures written to {json_path}")
