"""Training-batch augmentation on the tensor, on the training device: no PIL, no CPU round trip.

The report's torchvision transforms were RandomRotation(2) and RandomHorizontalFlip() applied per
image by PIL. Here one affine warp per batch does the same: each image gets its own rotation angle
in [-max, +max] degrees, its own coin flip, and optionally a random-resized crop, all folded into
a 2x3 matrix per image and applied by a single `grid_sample` with zero fill outside the image,
like RandomRotation's default black corners. Sampling is nearest-pixel, as RandomRotation's
default, unless the crop is on (bilinear, as RandomResizedCrop's default); on CPU nearest also
costs half as much (34 against 60 ms per batch of 128 at 256 px on 2 cores).

Fused training (catdog.fused) warps the batches of K trials together: `augment_members` takes
them as one (K*B, 3, S, S) tensor, draws each member's random numbers from that member's own
generator, in the order and number `augment` draws them for that member alone, and warps all
K*B images in one `grid_sample` per sampling mode. `augment` is the same code with K = 1, so a
member's pixels are exactly those it would get trained alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from catdog.config import Augmentation

# The uniform draws per image, in the order augment makes them: the angle always, the coin if
# flipping, and four for a crop (area, aspect ratio, horizontal and vertical shift).
DRAWS = ("angle", "flip", "area", "ratio", "shift_x", "shift_y")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) in 0..255 -> float32 in [0, 1], like torchvision's ToTensor."""
    return images.float().div_(255.0)


def augment(
    images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator
) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> augmented float32 (B, 3, S, S) in [0, 1], on images' device."""
    return augment_members(images, AugmentPlan.build([augmentation], images.device), [generator])


@dataclass(frozen=True)
class AugmentPlan:
    """K members' augmentation settings in the form the batched warp uses.

    A setting that every member using it shares is a Python number, as in a single run; one that
    differs is a (K, 1) tensor on the device, made here once rather than copied to the device
    every step (a copy from pageable host memory would make the host wait for the GPU).
    """

    draws: tuple[tuple[str, ...], ...]  # member k's draws per image, in DRAWS order
    radians: float | torch.Tensor  # largest rotation angle (0 for a member that only flips)
    flip: bool | torch.Tensor  # (K, 1) bool where members differ
    crop: bool | torch.Tensor  # (K, 1) bool where members differ
    crop_low: float | torch.Tensor  # a crop's area is uniform in [low, low + span]
    crop_span: float | torch.Tensor
    # Where some members crop and some not: (nearest members, bilinear members) as index tensors.
    split: tuple[torch.Tensor, torch.Tensor] | None

    @classmethod
    def build(cls, augmentations: Sequence[Augmentation], device: torch.device) -> AugmentPlan:
        draws = tuple(_draws(a) for a in augmentations)
        crops = [a.min_crop_scale < 1.0 for a in augmentations]
        low = [a.min_crop_scale if c else None for a, c in zip(augmentations, crops, strict=True)]
        span = [None if v is None else 1.0 - v for v in low]  # in double, as augment did
        split = None
        if any(crops) and not all(crops):
            split = tuple(
                torch.tensor([k for k, c in enumerate(crops) if c == kind], device=device)
                for kind in (False, True)
            )
        return cls(
            draws,
            _setting([math.radians(a.rotation_degrees) for a in augmentations], device),
            _setting([a.flip for a in augmentations], device),
            _setting(crops, device),
            _setting(low, device),
            _setting(span, device),
            split,
        )

    @property
    def members(self) -> int:
        return len(self.draws)


def _draws(augmentation: Augmentation) -> tuple[str, ...]:
    if augmentation.is_identity:
        return ()
    names = ["angle"]
    if augmentation.flip:
        names.append("flip")
    if augmentation.min_crop_scale < 1.0:
        names += ["area", "ratio", "shift_x", "shift_y"]
    return tuple(names)


def _setting(values: list, device: torch.device) -> float | bool | torch.Tensor:
    """One member's value each (None: not used by that member) -> a Python value when all
    members that use it agree, else a (K, 1) tensor (float32 from the doubles, or bool)."""
    used = {v for v in values if v is not None}
    if len(used) <= 1:
        return used.pop() if used else 0.0
    filler = next(iter(used))
    column = [filler if v is None else v for v in values]
    dtype = torch.bool if isinstance(filler, bool) else torch.float32
    return torch.tensor(column, dtype=dtype, device=device).view(-1, 1)


def augment_members(
    images: torch.Tensor, plan: AugmentPlan, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """uint8 (K*B, 3, S, S), member k's batch in rows k*B to (k+1)*B - 1 -> float32 (K*B, 3, S, S)
    in [0, 1]: member k's rows augmented as `augment` would, drawing from generators[k]."""
    pixels = to_float(images)
    if not any(plan.draws):
        return pixels
    members = plan.members
    batch = images.shape[0] // members
    uniforms = _uniforms(plan, generators, batch, images.device)
    theta = _theta(uniforms, plan).flatten(0, 1)  # (K*B, 2, 3)
    grid = affine_grid(theta, pixels.shape[-2], pixels.shape[-1])
    if plan.split is None:
        mode = "bilinear" if plan.crop is True else "nearest"
        return F.grid_sample(pixels, grid, mode=mode, padding_mode="zeros", align_corners=False)
    # Members that crop sample bilinearly, the others nearest: one grid_sample for each group.
    # A member that does not augment at all warps by the identity here, which nearest sampling
    # reproduces exactly (each pixel centre maps onto itself).
    pixels, grid = pixels.unflatten(0, (members, batch)), grid.unflatten(0, (members, batch))
    out = torch.empty(pixels.shape, device=pixels.device)  # (K, B, 3, S, S)
    for mode, group in zip(("nearest", "bilinear"), plan.split, strict=True):
        warped = F.grid_sample(
            pixels[group].flatten(0, 1),
            grid[group].flatten(0, 1),
            mode=mode,
            padding_mode="zeros",
            align_corners=False,
        )
        out.index_copy_(0, group, warped.unflatten(0, (len(group), batch)))
    return out.flatten(0, 1)


def _uniforms(
    plan: AugmentPlan, generators: Sequence[torch.Generator], batch: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Each draw's uniforms in [0, 1) as (K, B): row k from generators[k], in member k's order.

    A member that does not make a draw gets 0.5 there; its settings discard the result (or,
    for the angle of a member without rotation, multiply it by 0).
    """
    names = [name for name in DRAWS if any(name in draws for draws in plan.draws)]
    shape = (len(names), plan.members, batch)
    complete = all(draws == tuple(names) for draws in plan.draws)
    values = torch.empty(shape, device=device)
    if not complete:
        values.fill_(0.5)
    row = {name: index for index, name in enumerate(names)}
    for member, (draws, generator) in enumerate(zip(plan.draws, generators, strict=True)):
        for name in draws:
            values[row[name], member].uniform_(generator=generator)  # as torch.rand(B) draws
    return {name: values[index] for name, index in row.items()}


def _theta(uniforms: dict[str, torch.Tensor], plan: AugmentPlan) -> torch.Tensor:
    """(K, B, 2, 3) affine matrices from the draws, element for element as a single run makes
    them (the same operations on the same float32 values)."""

    def uniform(name: str, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * uniforms[name]

    angle = uniform("angle", -1.0, 1.0) * plan.radians
    ones = torch.ones_like(angle)
    mirror = ones
    if plan.flip is not False:
        heads = uniforms["flip"] < 0.5
        mirror = torch.where(heads if plan.flip is True else heads & plan.flip, -1.0, 1.0)
    # Crop: width/height as fractions of the image, RandomResizedCrop's area and 3/4..4/3 ratio.
    width = height = ones
    shift_x = shift_y = torch.zeros_like(angle)
    if plan.crop is not False:
        area = plan.crop_low + plan.crop_span * uniforms["area"]
        ratio = torch.exp(uniform("ratio", math.log(3 / 4), math.log(4 / 3)))
        crop_width = torch.sqrt(area * ratio).clamp(max=1.0)
        crop_height = torch.sqrt(area / ratio).clamp(max=1.0)
        crop = [
            crop_width,
            crop_height,
            uniform("shift_x", -1.0, 1.0) * (1.0 - crop_width),
            uniform("shift_y", -1.0, 1.0) * (1.0 - crop_height),
        ]
        if plan.crop is not True:  # members without a crop keep 1, 1, 0, 0
            kept = (1.0, 1.0, 0.0, 0.0)
            crop = [torch.where(plan.crop, v, k) for v, k in zip(crop, kept, strict=True)]
        width, height, shift_x, shift_y = crop
    # affine_grid maps output coordinates in [-1, 1] to input coordinates:
    # input = crop_scale @ rotation @ mirror @ output + shift.
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack(
        [
            torch.stack([width * cos * mirror, -width * sin, shift_x], dim=-1),
            torch.stack([height * sin * mirror, height * cos, shift_y], dim=-1),
        ],
        dim=-2,
    )


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """F.affine_grid(theta, (B, C, H, W), align_corners=False): (B, H, W, 2), built as a column
    term plus a row term in one broadcast add. affine_grid's batched matmul over a (B, H*W, 3)
    base grid took longer than grid_sample itself on CPU (0.1 s against 0.01 s per batch of 128
    at 256 px).
    """
    device, dtype = theta.device, theta.dtype
    # Pixel centres in [-1, 1], as affine_grid places them with align_corners=False.
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1  # (W,)
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1  # (H,)
    # theta (B, 2, 3): for each of the two output coordinates, the weights of x, y and 1.
    column_term = theta[:, :, 0, None] * xs  # (B, 2, W)
    row_term = theta[:, :, 1, None] * ys + theta[:, :, 2, None]  # (B, 2, H)
    grid = column_term[:, :, None, :] + row_term[:, :, :, None]  # (B, 2, H, W)
    return grid.permute(0, 2, 3, 1)  # (B, H, W, 2); grid_sample takes it strided as it is
