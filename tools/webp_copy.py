r"""Copy a data set in the Kaggle layout as WebP files, small enough to take to a GPU machine.

The device tool carries at most 64 MiB per call: `dogs-cats-dev` (10 000 JPEGs, 96 MB) as WebP
at quality 75 is about 46 MiB (4.7 KB a photo, measured on 200 of them, 2026-11-30). Same
folders and file names but the suffix; the pixels change by the compression, so figures on the
copy are figures on "dogs-cats-dev (WebP q75)", not on the originals.

    .venv/bin/python tools/webp_copy.py ../shared/data/dogs-cats-dev \
        storage/gpu-data/dogs-cats-dev-webp

storage/ is git-ignored, so the copy travels only when a device call names it in `carry`.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catdog.cores import usable_cores  # noqa: E402
from catdog.dataset import IMAGE_SUFFIXES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--quality", type=int, default=75)
    args = parser.parse_args()
    if args.dest.exists():
        sys.exit(f"error: {args.dest} exists")
    files = [p for p in args.source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    partial = args.dest.with_name(args.dest.name + ".partial")

    def convert(path: Path) -> int:
        target = (partial / path.relative_to(args.source)).with_suffix(".webp")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").save(target, "WEBP", quality=args.quality, method=4)
        return target.stat().st_size

    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        total = sum(pool.map(convert, files))
    partial.rename(args.dest)  # whole or not at all
    print(f"{len(files)} images, {total / 2**20:.1f} MiB in {args.dest}")


if __name__ == "__main__":
    main()
