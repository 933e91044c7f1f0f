"""K CatDogCNNs as one network, fused across members as HFTA fuses them (MLSys 2021).

Each member keeps its own weights; each operator runs once for all K members:

  input      (B, K*3, S, S): channels 3k..3k+2 hold member k's batch (its own images)
  Conv2d     groups=K, weight (K*Cout, Cin, kh, kw): group k sees only member k's channels
             and holds member k's weight, so K convolutions are one launch
  BatchNorm  BatchNorm2d(K*Cout): its statistics are per channel, so each member's stay its own
  MaxPool2d(2), ReLU: per channel (ReLU after the pool: catdog.model.block_layers)
  head       features (B, K*C, h, w) -> (K, B, C*h*w), times (K, C*h*w, N) plus (K, 1, N) for
             N classes: one batched matmul; the output is each member's logits, (K, B, N)

Members go side by side in the channels rather than in the batch ((K*B, 3, S, S)) because a
grouped convolution is the operator that takes K weights at once; stacked along the batch, the
members would need K convolutions again. Memory is channels-last, so each pixel's K*C channels
lie together, the layout of cuDNN's and oneDNN's NHWC grouped-convolution kernels.

On CPU the convolutions run split (`split_convolutions`): as the K member convolutions, on
split views of the fused tensors. oneDNN computes a grouped convolution with other kernels than
a single one (a padded 3-channel first layer, the weight gradients), which round differently:
about 1e-6 relative per step, and training turns that into per-cent differences within a few
epochs. Split, each member's convolution is exactly the one it runs alone, so fused CPU training
is bitwise that of separate runs; everything else (BatchNorm, pooling, head, loss, optimizers,
data) runs fused all the same. On a GPU they run grouped, or split in the blocks where `--fuse
auto` measured that faster (catdog.fused.choose): cuDNN's grouped weight-gradient kernels for
few channels per group (block 1 has 3) have fallen back to slow ones before.

Tensor names are CatDogCNN's (features.0.weight, ..., head.1.bias). A fused tensor is the
members' tensors concatenated along dim 0 (features) or stacked in a new dim 0 (the head), and
`member_view` is member k's part of it, a view with CatDogCNN's shape and strides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from catdog.model import HEAD_BIAS, block_layers, conv_blocks, head_width

# Which of the six convolutions run split (True) or grouped (False), block 1 first; one bool
# for all of them.
SplitLayers = bool | Sequence[bool]
# Device types whose convolutions run split unless told otherwise: exact there (see above).
SPLIT_DEVICES = ("cpu",)


class FusedCNN(nn.Module):
    """K CatDogCNNs; input (B, K*3, S, S) floats in [0, 1], output logits (K, B, num_classes).

    Build it with `from_members`; the constructor only lays out (uninitialised) tensors.
    """

    def __init__(
        self,
        image_size: int,
        members: int,
        *,
        num_classes: int = 2,
        split_convolutions: SplitLayers = False,
    ) -> None:
        super().__init__()
        self.image_size, self.members = image_size, members
        blocks = conv_blocks(image_size)
        split = per_layer(split_convolutions, len(blocks))
        layers: list[nn.Module] = []
        for (in_channels, out_channels, kernel, padding), split_here in zip(
            blocks, split, strict=True
        ):
            conv = FusedConv2d(
                members * in_channels,
                members * out_channels,
                kernel,
                padding=padding,
                groups=members,
                bias=False,
                split=split_here,
            )
            layers += block_layers(conv, members * out_channels)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            MemberFlatten(members), FusedLinear(members, head_width(image_size), num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    @classmethod
    def from_members(
        cls,
        members: Sequence[Mapping[str, torch.Tensor]],
        image_size: int,
        *,
        split_convolutions: SplitLayers | None = None,
    ) -> FusedCNN:
        """The fused network of K CatDogCNN state_dicts (member k in group k), on their device.

        split_convolutions: one bool for every convolution or one per block; None for the
        device's default (split on SPLIT_DEVICES, the CPU; grouped elsewhere).
        The BatchNorm layers' num_batches_tracked start at 0: with BatchNorm's fixed momentum
        nothing reads them, and each member's count stays with the member (catdog.fused.trainer).
        """
        device = next(iter(members[0].values())).device
        if split_convolutions is None:
            split_convolutions = device.type in SPLIT_DEVICES
        num_classes = len(members[0][HEAD_BIAS])
        with torch.device("meta"):  # shapes only: no initialisation, no random numbers drawn
            fused = cls(
                image_size,
                len(members),
                num_classes=num_classes,
                split_convolutions=split_convolutions,
            )
        tensors = {}
        for name in fused.state_dict():
            if name.endswith("num_batches_tracked"):
                tensors[name] = torch.zeros((), dtype=torch.long, device=device)
                continue
            parts = [member[name].detach() for member in members]
            joined = torch.stack(parts) if _stacked(name) else torch.cat(parts)
            if joined.dim() == 4:
                joined = joined.contiguous(memory_format=torch.channels_last)
            tensors[name] = joined
        fused.load_state_dict(tensors, assign=True)
        return fused

    def member_state_dict(self, member: int) -> dict[str, torch.Tensor]:
        """Member k's tensors as a CatDogCNN state_dict of views (num_batches_tracked left out)."""
        return {
            name: member_view(tensor, name, self.members, member)
            for name, tensor in self.state_dict().items()
            if not name.endswith("num_batches_tracked")
        }


def per_layer(split: SplitLayers, layers: int) -> tuple[bool, ...]:
    """`split` as one bool per convolution; ValueError for a sequence of another length."""
    if isinstance(split, bool):
        return (split,) * layers
    split = tuple(bool(s) for s in split)
    if len(split) != layers:
        raise ValueError(f"split_convolutions needs {layers} values, one per block, got {split}")
    return split


def _stacked(name: str) -> bool:
    return name.startswith("head.")


def member_view(tensor: torch.Tensor, name: str, members: int, member: int) -> torch.Tensor:
    """Member k's part of the fused tensor `name` (or of its gradient): a view shaped as in
    CatDogCNN. A convolution's (K*Cout, Cin, kh, kw) weight is split along its outermost dim,
    so member k's part keeps the fused tensor's channels-last strides."""
    if _stacked(name):
        return tensor[member]
    return tensor.unflatten(0, (members, -1))[member]


class FusedConv2d(nn.Conv2d):
    """Conv2d(K*Cin, K*Cout, groups=K): one grouped convolution, or with `split` the K member
    convolutions one after another (see the module docstring), same weights, same result up to
    rounding."""

    def __init__(self, *args: Any, split: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.split = split

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.split or self.groups == 1:
            return super().forward(images)
        # split(), not slicing: its backward joins the K gradients in one cat, where slicing
        # would add each member's gradient into a zero tensor of all K members' size.
        inputs = images.split(self.in_channels // self.groups, dim=1)
        weights = self.weight.split(self.out_channels // self.groups, dim=0)
        outputs = [
            F.conv2d(part, weight, None, self.stride, self.padding, self.dilation)
            for part, weight in zip(inputs, weights, strict=True)
        ]
        return torch.cat(outputs, dim=1)


class MemberFlatten(nn.Module):
    """(B, K*C, h, w) -> (K, B, C*h*w): each member's features flattened as nn.Flatten orders
    them (channel, row, column)."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.members = members

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.reshape(features.shape[0], self.members, -1).transpose(0, 1)


class FusedLinear(nn.Module):
    """K Linear(in, out) layers as one batched matmul: (K, B, in) -> (K, B, out)."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), features, self.weight.transpose(1, 2))


def member_input(pixels: torch.Tensor, members: int, precision: str) -> torch.Tensor:
    """Float pixels (K*B, 3, S, S), member k's batch in rows k*B.. -> the fused network's input
    (B, K*3, S, S), channels-last, in bf16 for precision 'bf16': one strided copy, which is also
    model_input's conversion."""
    batch, _, height, width = pixels.shape
    batch //= members
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    out = torch.empty((batch, height, width, members, 3), dtype=dtype, device=pixels.device)
    out.copy_(pixels.unflatten(0, (members, batch)).permute(1, 3, 4, 0, 2))
    return out.flatten(3).permute(0, 3, 1, 2)  # (B, K*3, S, S) with channels-last strides


def shared_input(pixels: torch.Tensor, members: int, precision: str) -> torch.Tensor:
    """Float pixels (B, 3, S, S) that every member sees (evaluation) -> (B, K*3, S, S) as
    member_input makes it."""
    batch, _, height, width = pixels.shape
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    out = torch.empty((batch, height, width, members, 3), dtype=dtype, device=pixels.device)
    out.copy_(pixels.permute(0, 2, 3, 1).unsqueeze(3).expand(out.shape))
    return out.flatten(3).permute(0, 3, 1, 2)
