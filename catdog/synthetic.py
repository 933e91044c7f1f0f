"""A deterministic synthetic image set in the Kaggle layout, for runs without real data.

SYNTHETIC, not cats and dogs: "cats" are images whose object is an ellipse, "dogs" images whose
object is a triangle or an irregular quadrilateral. Everything a linear model could read from
global statistics is drawn from the same distribution for every class: background gradient and
noise, object colour, size, position and rotation. (Distractor strokes and small shapes of the
other class were tried and made the task too hard for this network on a few thousand 64 px
images: no configuration passed 75 % in 8 epochs.) The images are JPEG files of varied sizes
and aspect ratios, so decoding and resizing are exercised as with real photos, and a few are
filed under the wrong class (label noise) so that accuracy stays below 100 %.

With three classes (`classes=3`, a stand-in for a user's own photos) the folders are named
after their shapes, ellipses/, polygons/ and stars/ (five-pointed); a two-class set is written
byte for byte as before the third shape existed, so its caches and figures stay valid.

By default the JPEGs are small (80-200 px high), which keeps the set quick to write and to
decode. `photo_sized` makes them as large as Kaggle's photos (long side 300-500 px), for timing
the report's per-epoch PIL pipeline: it then costs per image about what it costs on the real
photos (through the classic loader on the 2-core dev VM: 2.9-4.1 ms per image, against 2.6 ms
measured on the real set; small JPEGs 1.5-2.6 ms). Each image has its own seeded generator, so
the set is the same however many threads write it.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from catdog.classes import REPORT_FOLDERS
from catdog.cores import usable_cores
from catdog.dataset import SPLITS

MANIFEST = "synthetic.json"  # marks a folder as this synthetic set and records how it was made
SHAPE_FOLDERS = ("ellipses", "polygons", "stars")  # sorted: class i draws shape i


@dataclass(frozen=True)
class SyntheticSpec:
    seed: int = 0
    train_per_class: int = 1000
    test_per_class: int = 200
    label_noise: float = 0.04  # fraction of images filed under the other class
    image_size: int = 64  # the size the study trains at by default on this set
    photo_sized: bool = False  # JPEGs with a long side of 300-500 px, like Kaggle's photos
    classes: int = 2  # 2: cats/ and dogs/, the report's folders; 3: ellipses/, polygons/, stars/

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= len(SHAPE_FOLDERS):
            raise ValueError(f"classes must be 2 or 3, got {self.classes}")

    @property
    def class_folders(self) -> tuple[str, ...]:
        """The folder of each class, in class order."""
        return REPORT_FOLDERS if self.classes == 2 else SHAPE_FOLDERS[: self.classes]


def read_manifest(root: Path) -> SyntheticSpec | None:
    """The spec of a synthetic set at `root`, or None when `root` is not one."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    values = json.loads(path.read_text())
    return SyntheticSpec(**values.get("spec", {}))


def write_synthetic_dataset(
    root: Path, spec: SyntheticSpec = SyntheticSpec(), *, threads: int | None = None
) -> Path:
    """Write the set to `root` (which must not exist yet) and return `root`.

    The set is built in a temporary folder beside `root` and renamed into place when whole, so
    an interrupted run leaves nothing half-written. `threads` (default: one per CPU) draw and
    save the images; numpy and Pillow release the GIL for the pixel work (photo-sized images:
    2.0x with 2 threads on 2 cores), and the files are the same for any number.
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        images = []  # (split folder, split index, label, index, images per class)
        for split_index, split in enumerate(SPLITS):
            per_class = spec.train_per_class if split == SPLITS[0] else spec.test_per_class
            for folder in spec.class_folders:
                (building / split / folder).mkdir(parents=True)
            for label in range(spec.classes):
                images += [
                    (building / split, split_index, label, i, per_class) for i in range(per_class)
                ]

        # Set on the first error or Ctrl-C: no thread starts another image after it (map's own
        # cancelling comes only when the main thread reaches the failed image's result).
        failed = threading.Event()

        def write(image: tuple[Path, int, int, int, int]) -> None:
            if failed.is_set():
                return
            try:
                _write_image(spec, *image)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(max_workers=threads or usable_cores()) as pool:
            try:
                for _ in pool.map(write, images):
                    pass
            except BaseException:
                failed.set()
                raise
        values = asdict(spec)
        if spec.classes == 2:  # a two-class set's manifest stays byte for byte as before
            del values["classes"]
        manifest = {"kind": "catdog synthetic data set (NOT cats and dogs)", "spec": values}
        (building / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        building.rename(root)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return root


def _write_image(
    spec: SyntheticSpec, split_dir: Path, split_index: int, label: int, index: int, per_class: int
) -> None:
    """Image `index` of class `label` of one split, saved into the folder it is filed in."""
    # One generator per image: any image can be regenerated on its own.
    rng = np.random.default_rng([spec.seed, split_index, label, index])
    image = draw_image(rng, label, photo_sized=spec.photo_sized)
    filed_label = label
    if rng.random() < spec.label_noise:  # filed under another class, drawn when there are several
        filed_label = 1 - label if spec.classes == 2 else _other_class(rng, label, spec.classes)
    # Named like Kaggle's files (cat.123.jpg) after the folder it is filed in.
    number = label * per_class + index
    folder = spec.class_folders[filed_label]
    quality = int(rng.integers(80, 96))
    image.save(split_dir / folder / f"{folder[:-1]}.{number}.jpg", quality=quality)


def _other_class(rng: np.random.Generator, label: int, classes: int) -> int:
    return (label + 1 + int(rng.integers(classes - 1))) % classes


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, size=3))


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Linear gradient between two random colours in a random direction, plus pixel noise."""
    start, end = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    t = (xs * math.cos(angle) + ys * math.sin(angle)).astype(np.float32)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    pixels = start + (end - start) * t[..., None]
    pixels += rng.normal(0, rng.uniform(4, 20), size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _shape_points(rng: np.random.Generator, label: int, cx: float, cy: float, radius: float):
    """Outline of an ellipse (label 0), a triangle / quadrilateral (label 1) or a five-pointed
    star (label 2), rotated."""
    rotation = rng.uniform(0, 2 * math.pi)
    if label == 0:
        stretch = rng.uniform(1.0, 1.6)
        angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        rx, ry = radius, radius / stretch
    elif label == 2:
        # Ten corners, every other one drawn in: a star's points are what sets it apart.
        angles = np.arange(10) * math.pi / 5
        rx = ry = radius * np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.55))
    else:
        sides = int(rng.integers(3, 5))
        # Irregular corners keep squares from looking like the ellipses' 48-gons at small sizes.
        angles = np.arange(sides) * 2 * math.pi / sides + rng.uniform(-0.25, 0.25, sides)
        rx = ry = radius
    x, y = rx * np.cos(angles), ry * np.sin(angles)
    xr = cx + x * math.cos(rotation) - y * math.sin(rotation)
    yr = cy + x * math.sin(rotation) + y * math.cos(rotation)
    return [(float(a), float(b)) for a, b in zip(xr, yr, strict=True)]


def draw_image(rng: np.random.Generator, label: int, *, photo_sized: bool = False) -> Image.Image:
    """One synthetic image of class `label` (0 = ellipse 'cat', 1 = polygon 'dog', 2 = star).

    Width / height is 0.7-1.5. Small: 80-199 px high. Photo-sized: the long side 300-500 px.
    """
    if photo_sized:
        long_side, aspect = int(rng.integers(300, 501)), rng.uniform(0.7, 1.5)
        if aspect >= 1:
            width, height = long_side, int(long_side / aspect)
        else:
            width, height = int(long_side * aspect), long_side
    else:
        height = int(rng.integers(80, 200))
        width = int(height * rng.uniform(0.7, 1.5))
    image = _background(rng, width, height)
    radius = min(width, height) * rng.uniform(0.25, 0.42)
    centre = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
    ImageDraw.Draw(image).polygon(
        _shape_points(rng, label, *centre, radius), fill=_random_colour(rng)
    )
    return image
