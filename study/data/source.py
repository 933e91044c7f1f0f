"""Which data set a study trains on, and at which size: `--data` and `--image-size` resolved.

The kind of set (the synthetic one or images), its folder and the image size make the data
source; everything a study stores about its data is written from it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from catdog.names import printable
from catdog.synthetic import read_manifest, write_synthetic_dataset
from study.settings import CACHE_DIR, REAL_DATA_DIR, REAL_IMAGE_SIZE, SYNTHETIC_DIR

KINDS = ("SYNTHETIC shapes", "images")  # what a description calls the data: stored on trials


@dataclass(frozen=True)
class DataSource:
    root: Path  # the folder as given: the data set, or the folder one level above it
    image_size: int  # px, the side of the square every image is squashed to
    synthetic: bool  # the SYNTHETIC shapes set (it has a manifest), not photos

    @property
    def kind(self) -> str:
        return KINDS[0] if self.synthetic else KINDS[1]

    @property
    def description(self) -> str:
        """E.g. 'SYNTHETIC shapes from storage/data/synthetic, 64 px' (stored on trials)."""
        return f"{self.kind} from {printable(self.root)}, {self.image_size} px"


def described_folder(description: str | None) -> Path | None:
    """The folder a stored description names ('SYNTHETIC shapes from storage/data/synthetic,
    64 px' -> storage/data/synthetic), as given to the run (relative to its folder); None for
    another text."""
    kinds = "|".join(re.escape(kind) for kind in KINDS)
    match = re.fullmatch(rf"(?:{kinds}) from (.+), \d+ px", description or "")
    return Path(match[1]) if match else None


def resolve_data(
    spec: str | None, image_size: int | None = None, echo: Callable[[str], None] = print
) -> DataSource:
    """The data set --data names: a folder, 'synthetic', or None for real data when present.

    The synthetic set is written first when it is asked for and absent. image_size None: the
    synthetic set's own size, else the report's 256 px. The folder is not read here.
    """
    if spec is None:
        if REAL_DATA_DIR.is_dir():
            spec = str(REAL_DATA_DIR)
        else:
            echo(f"no real data in {REAL_DATA_DIR}: using the SYNTHETIC set in {SYNTHETIC_DIR}")
            spec = "synthetic"
    root = Path(spec)
    if spec == "synthetic":
        root = SYNTHETIC_DIR
        if not root.exists():
            echo(f"writing the synthetic data set (shapes, not cats and dogs) to {root}")
            write_synthetic_dataset(root)
    return data_source(root, image_size)


def data_source(root: Path, image_size: int | None = None) -> DataSource:
    """The data set in folder `root`; image_size None: the synthetic set's own size (64 px),
    else the report's 256 px."""
    manifest = read_manifest(root)
    if image_size is None:
        image_size = manifest.image_size if manifest is not None else REAL_IMAGE_SIZE
    return DataSource(Path(root), image_size, synthetic=manifest is not None)


def cache_dir_for(root: Path) -> Path:
    """One cache folder per data folder, named after it and its absolute path.

    The name is UTF-8 even when the data folder's is not (safetensors opens only UTF-8 paths);
    the hash of the path's own bytes keeps two such folders apart.
    """
    resolved = Path(root).resolve()
    tag = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:8]
    name = os.fsencode(resolved.name).decode("utf-8", "replace")
    return CACHE_DIR / f"{name}-{tag}"
