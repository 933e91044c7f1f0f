"""A trained model's answers on a labelled set, class by class: its confusion matrix.

Accuracy alone hides which classes a model confuses, and on a set whose classes differ in size
it flatters a model that favours the larger one; catdog.classes.ClassScores turns the matrix into
per-class and balanced accuracy.
"""

from __future__ import annotations

import torch

from catdog.augment import to_float
from catdog.classes import ClassScores
from catdog.model import CatDogCNN
from catdog.train import DeviceImages, autocast, eval_batch_size, model_input


@torch.inference_mode()
def predicted_labels(
    model: CatDogCNN, data: DeviceImages, precision: str = "fp32"
) -> torch.Tensor:
    """The model's answer (N,) int64 for each of the N un-augmented images, as evaluate() scores
    them (the same batches, precision and argmax), on the CPU."""
    model.eval()
    device = data.images.device
    answers = []
    batch = eval_batch_size(data.image_size)
    for start in range(0, len(data), batch):
        images = model_input(to_float(data.images[start : start + batch]), precision)
        with autocast(device, precision):
            answers.append(model(images).argmax(dim=1).cpu())
    return torch.cat(answers) if answers else torch.zeros(0, dtype=torch.int64)


def class_scores(model: CatDogCNN, data: DeviceImages, precision: str = "fp32") -> ClassScores:
    """The confusion matrix of the model on `data` (rows: true class, columns: answer)."""
    classes = data.num_classes
    pairs = data.labels.cpu() * classes + predicted_labels(model, data, precision)
    counts = torch.bincount(pairs, minlength=classes * classes).reshape(classes, classes)
    return ClassScores(tuple(tuple(int(n) for n in row) for row in counts.tolist()))
