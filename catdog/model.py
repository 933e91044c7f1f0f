"""The report's six-block CNN, exact at 256 px and valid down to 64 px, for two classes or more.

Each block is the report's Conv2d(bias=False) -> BatchNorm2d -> ReLU -> MaxPool2d(2), computed as
Conv2d -> BatchNorm2d -> MaxPool2d(2) -> ReLU (see `block_layers`). At 256 px the
convolutions are unpadded, as in the report, and the feature map ends at 128 x 2 x 2 = 512 values
for Linear(512, 2). Unpadded, the six blocks need at least 179 px: below that, every convolution
gets a zero border of kernel // 2 pixels, so that only the pools shrink the image (64 px -> 1 x 1,
128 px -> 2 x 2). That is the one change; the head's width is always computed from the image size.
A data set of N classes gets the head Linear(features, N); for N = 2 that is the report's network,
parameter for parameter and, for a given seed, initial weight for initial weight.
"""

from __future__ import annotations

import torch
from torch import nn

BLOCKS = ((16, 4), (32, 3), (32, 2), (64, 2), (64, 3), (128, 3))  # (out channels, kernel size)
MIN_IMAGE_SIZE = 64  # 2**6: six pools of 2 leave at least one pixel
HEAD_BIAS = "head.1.bias"  # the state_dict name of the head's bias, (num_classes,)


def conv_padding(image_size: int) -> int | None:
    """None for the report's unpadded convolutions where they fit, else padding = kernel // 2."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    return None if _feature_side(image_size, padded=False) >= 1 else 1


def _feature_side(image_size: int, *, padded: bool) -> int:
    """Side in pixels of the last block's output for a square input of image_size pixels."""
    side = image_size
    for _, kernel in BLOCKS:
        padding = kernel // 2 if padded else 0
        side = side + 2 * padding - kernel + 1
        if side < 2:
            return 0
        side //= 2
    return side


def conv_blocks(image_size: int) -> list[tuple[int, int, int, int]]:
    """(in channels, out channels, kernel size, padding) of each block at this image size."""
    padded = conv_padding(image_size) is not None
    channels = [3] + [out_channels for out_channels, _ in BLOCKS]
    return [
        (channels[i], out_channels, kernel, kernel // 2 if padded else 0)
        for i, (out_channels, kernel) in enumerate(BLOCKS)
    ]


def block_sides(image_size: int) -> list[tuple[int, int]]:
    """(input side, convolution output side) in px of each block: (256, 253) for block 1 at
    256 px, (126, 124) for block 2. The convolution's output is a block's largest tensor
    (BatchNorm's has its shape, the pool's a quarter of it)."""
    side, sides = image_size, []
    for _, _, kernel, padding in conv_blocks(image_size):
        out = side + 2 * padding - kernel + 1
        sides.append((side, out))
        side = out // 2
    return sides


def head_width(image_size: int) -> int:
    """Number of features entering the Linear head: channels x side x side."""
    padded = conv_padding(image_size) is not None
    side = _feature_side(image_size, padded=padded)
    return BLOCKS[-1][0] * side * side


def block_layers(conv: nn.Module, channels: int) -> list[nn.Module]:
    """One block: conv, BatchNorm2d(channels), MaxPool2d(2), ReLU.

    The report writes ReLU before the pool; after it is the same function, exactly. ReLU is
    monotone, so relu(max(window)) == max(relu(window)) to the bit, in any precision; the
    gradient reaches a window's largest input in both orders when that input is positive
    (ties pick the same position, as no clamped value can tie a positive maximum) and reaches
    no input when it is not; BatchNorm comes first in both, so its statistics are the same.
    After the pool, ReLU reads and writes a quarter as many elements, and a training step moves
    about 18 % fewer bytes (counted per operation for issue 20); on a GPU these layers cost
    what they move. The two swapped modules hold no parameters or buffers, so the state_dict keys
    (features.0.weight, features.1.running_mean, ..., features.4.weight) are those of the
    report's order, and model files written before load unchanged. `report_order` gives the
    report's order back, for checks.
    """
    return [conv, nn.BatchNorm2d(channels), nn.MaxPool2d(2), nn.ReLU(inplace=True)]


def report_order(features: nn.Sequential) -> nn.Sequential:
    """The same modules with each block's ReLU moved back before its MaxPool2d, as the report
    wrote the block (for tests and tools/fused_probe.py); a new Sequential sharing the
    modules, with the same state_dict keys."""
    layers = list(features)
    for start in range(0, len(layers), 4):  # conv, BatchNorm, pool, ReLU
        layers[start + 2], layers[start + 3] = layers[start + 3], layers[start + 2]
    return nn.Sequential(*layers)


class CatDogCNN(nn.Module):
    """Six conv blocks and a linear head; input (B, 3, S, S) floats in [0, 1], output logits
    (B, num_classes), class i being a data set's i-th class folder (catdog.classes)."""

    def __init__(self, image_size: int = 256, num_classes: int = 2) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.image_size, self.num_classes = image_size, num_classes
        layers: list[nn.Module] = []
        for in_channels, out_channels, kernel, padding in conv_blocks(image_size):
            conv = nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=False)
            layers += block_layers(conv, out_channels)
        self.features = nn.Sequential(*layers)
        # Built after the features, as the report's network was: for 2 classes it draws the
        # same initial weights from the seed (its weight (2, features) first, then its bias).
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(head_width(image_size), num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
