"""The report's classic pipeline, kept only so the benchmark can compare against it.

torchvision's ImageFolder decodes every JPEG with PIL on every epoch, then RandomRotation(2),
RandomHorizontalFlip(), Resize((256, 256)) and ToTensor() run per image on the CPU; a DataLoader
with no worker processes batches 128 of them, and the fp32 model in the default (NCHW) memory
format trains on each batch, reading the loss and correct count back after every step as
the usual training loop does. Training never uses this module.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from catdog.model import CatDogCNN

if TYPE_CHECKING:
    from torchvision import transforms

CLASSIC_BATCH_SIZE = 128  # the report's DataLoader batch


def classic_transform(image_size: int) -> transforms.Compose:
    """The report's per-image transforms, PIL image -> float32 (3, S, S) in [0, 1]."""
    # Imported here, not at the top: torchvision takes about 2 s to import, and every
    # catdog-study command (and --jobs worker) would pay that for the benchmark's sake.
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.RandomRotation(2),
            transforms.RandomHorizontalFlip(),
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
        ]
    )


def classic_loader(
    split_dir: Path,
    image_size: int,
    *,
    files: Collection[str] | None = None,
    batch_size: int = CLASSIC_BATCH_SIZE,
    seed: int = 0,
) -> DataLoader:
    """One epoch of shuffled batches over a split (only `files`, when given), decoded and
    transformed in the main process.

    The report applied the same random transforms to its test set, so evaluation uses them too.
    """
    from torchvision import datasets  # see classic_transform

    wanted = None if files is None else {Path(f) for f in files}
    dataset = datasets.ImageFolder(
        str(split_dir),
        transform=classic_transform(image_size),
        is_valid_file=None if wanted is None else (lambda path: Path(path) in wanted),
        allow_empty=True,  # a small choice of files may hold no image of one class
    )
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=0, generator=generator
    )


def classic_model(image_size: int, device: torch.device, num_classes: int = 2) -> CatDogCNN:
    """The report's model as it ran there: fp32, default memory format."""
    return CatDogCNN(image_size, num_classes).to(device)


def classic_train(
    model: CatDogCNN, optimizer: torch.optim.Optimizer, loader: DataLoader, device: torch.device
) -> int:
    """One training pass over `loader`; returns the number of images trained on."""
    model.train()
    seen = 0
    for images, labels in loader:
        if len(labels) < 2:  # BatchNorm cannot normalise a single image
            continue
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # The per-step read-back of a typical loop: it waits for the device every step.
        _running = (loss.item(), (logits.argmax(dim=1) == labels).sum().item())
        seen += len(labels)
    return seen


@torch.no_grad()
def classic_evaluate(model: CatDogCNN, loader: DataLoader, device: torch.device) -> int:
    """One evaluation pass over `loader`; returns the number of images evaluated."""
    model.eval()
    seen = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        _running = (
            F.cross_entropy(logits, labels).item(),
            (logits.argmax(dim=1) == labels).sum().item(),
        )
        seen += len(labels)
    return seen
