"""Self-describing model files: safetensors weights plus what is needed to rebuild and use them.

A model file holds the CNN's tensors and, in the safetensors header, a JSON `catdog` entry:
format name and version, image size, class names (the labels, in the order of the model's
outputs; a file that names none is the report's cat and dog), a SHA-256 of the tensors, the
training config, the metrics and any extra facts the caller adds (trial number, study, seed).
Loading checks the tensors against that digest, and the whole file against a SHA-256 the caller
recorded when one is given (the study records one per checkpoint; `export` writes one beside
the file). Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from catdog.atomic import atomic_write
from catdog.classes import REPORT_LABELS
from catdog.errors import CatdogError
from catdog.model import HEAD_BIAS, CatDogCNN

MODEL_FORMAT = "catdog-model"
MODEL_FORMAT_VERSION = 1
# What reading a file that is not (or no longer) a safetensors file raises.
_UNREADABLE = (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError)


class ModelFileError(CatdogError, ValueError):
    """A file that is not a usable model file; the message says why."""


@dataclass(frozen=True)
class ModelFile:
    model: CatDogCNN
    info: dict[str, Any]  # the `catdog` header entry

    @property
    def image_size(self) -> int:
        return int(self.info["image_size"])

    @property
    def class_names(self) -> tuple[str, ...]:
        """The label of each of the model's outputs, in order."""
        return model_class_names(self.info)


def model_class_names(info: dict[str, Any]) -> tuple[str, ...]:
    """The labels a model file's header names; the report's cat and dog where it names none."""
    return tuple(info.get("class_names") or REPORT_LABELS)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Digest of names, dtypes, shapes and bytes of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_model_file(
    path: Path, model: CatDogCNN, *, class_names: Sequence[str] = REPORT_LABELS, **info: Any
) -> str:
    """Write `model` with `info` (JSON-serialisable) atomically; returns the file's SHA-256.

    class_names: the label of each output (ValueError when their number differs)."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    outputs = len(tensors[HEAD_BIAS])
    if len(class_names) != outputs:
        raise ValueError(f"{len(class_names)} class names for a model of {outputs} outputs")
    header = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "image_size": model.image_size,
        "class_names": list(class_names),
        "tensors_sha256": tensors_sha256(tensors),
        **info,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(path)) as temporary:
        save_file(tensors, str(temporary), metadata={"catdog": json.dumps(header)})
    return sha256_of(Path(path))


def checksum_path(path: Path) -> Path:
    """Where `export` writes a model file's SHA-256, in `sha256sum` format: PATH.sha256."""
    return Path(f"{path}.sha256")


def write_checksum(path: Path, sha256: str) -> None:
    with atomic_write(checksum_path(path)) as temporary:
        Path(temporary).write_text(f"{sha256}  {Path(path).name}\n")


def read_checksum(path: Path) -> str | None:
    """The SHA-256 recorded beside `path`, or None when there is no PATH.sha256."""
    try:
        return checksum_path(path).read_text().split()[0]
    except (FileNotFoundError, IndexError):
        return None


def read_model_info(path: Path) -> dict[str, Any]:
    """The `catdog` header entry of a model file, without reading or checking its weights."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return _header(path, handle)
    except _UNREADABLE as error:
        raise ModelFileError(f"{path}: not a readable safetensors model file ({error})") from None


def load_model_file(
    path: Path, *, expected_sha256: str | None = None, device: str | torch.device = "cpu"
) -> ModelFile:
    """Rebuild the model from a model file; refuses files that fail any check."""
    path = _existing(path)
    if expected_sha256 is not None and sha256_of(path) != expected_sha256:
        raise ModelFileError(
            f"{path}: SHA-256 does not match the one recorded when it was written "
            "(the file was changed or damaged); refusing to load it"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            info = _header(path, handle)
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except _UNREADABLE as error:
        raise ModelFileError(f"{path}: not a readable safetensors model file ({error})") from None
    if tensors_sha256(tensors) != info.get("tensors_sha256"):
        raise ModelFileError(
            f"{path}: the weights do not match the digest written with them (the file was "
            "changed or damaged); refusing to use it"
        )
    names = model_class_names(info)
    try:
        model = CatDogCNN(int(info["image_size"]), len(names))
        model.load_state_dict(tensors)
    except (RuntimeError, ValueError):
        raise ModelFileError(
            f"{path}: weights do not fit the network they describe ({info['image_size']} px, "
            f"{len(names)} classes: {', '.join(names)})"
        ) from None
    return ModelFile(model.to(device).eval(), info)


def _existing(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    return path


def _header(path: Path, handle) -> dict[str, Any]:
    """The `catdog` entry of an open safetensors file, refused unless this format reads it."""
    info = json.loads((handle.metadata() or {}).get("catdog", "null"))
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: not a catdog model file")
    if info.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format version {info.get('format_version')} is not "
            f"supported (this version reads {MODEL_FORMAT_VERSION})"
        )
    return info
