"""A data set's classes: what each is called, and figures per class where their sizes differ.

The classes are the class folders' names sorted as torchvision's ImageFolder sorts them (by
code point: `Cats` before `birds`); class index i is the i-th folder, in every split. A class's
label, what `predict` prints and what a model file and a study store, is its folder's name, with
one exception: the report's pair of folders, cats/ and dogs/, keep the labels cat and dog that
every study, model file and example made before other classes were possible used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from catdog.names import printable

REPORT_FOLDERS = ("cats", "dogs")  # the report's class folders
REPORT_LABELS = ("cat", "dog")  # their labels; also those of a model file or study naming none
# Class sizes further apart than this (largest / smallest) make plain accuracy mislead: a model
# that answers the larger class for every image scores 60 % at 1.5 : 1.
IMBALANCE_RATIO = 1.5


def class_labels(folders: Sequence[str]) -> tuple[str, ...]:
    """The label of each class folder, in order: ('cats', 'dogs') -> ('cat', 'dog'), any other
    set of folders -> their names, printable (see catdog.names)."""
    folders = tuple(folders)
    if folders == REPORT_FOLDERS:
        return REPORT_LABELS
    return tuple(printable(folder) for folder in folders)


def is_report_pair(labels: Sequence[str]) -> bool:
    """True for the labels cat and dog: the classes the report's published figures are about."""
    return tuple(labels) == REPORT_LABELS


def imbalance(counts: Sequence[int]) -> float:
    """Largest class size over smallest (inf when a class is empty)."""
    smallest = min(counts)
    return float("inf") if smallest == 0 else max(counts) / smallest


def is_imbalanced(counts: Sequence[int]) -> bool:
    """True when class sizes differ by more than IMBALANCE_RATIO: balanced accuracy is then
    shown beside accuracy."""
    return imbalance(counts) > IMBALANCE_RATIO


def describe_counts(counts: Sequence[int], names: Sequence[str]) -> str:
    """E.g. '500 cats, 500 dogs': images per class, in class order; `names` (folder names) are
    shown printable, as a name that is not UTF-8 cannot be written to a UTF-8 terminal."""
    return ", ".join(
        f"{count} {printable(name)}" for count, name in zip(counts, names, strict=True)
    )


@dataclass(frozen=True)
class ClassScores:
    """A model's figures on a labelled set, from its confusion matrix: confusion[i][j] images
    of class i were classified as class j (rows: true class, columns: answer, in class order)."""

    confusion: tuple[tuple[int, ...], ...]

    @property
    def counts(self) -> tuple[int, ...]:
        """Images of each class."""
        return tuple(sum(row) for row in self.confusion)

    @property
    def per_class_accuracy(self) -> tuple[float, ...]:
        """The fraction of each class's images classified right (its recall; nan if none)."""
        return tuple(
            row[i] / sum(row) if sum(row) else math.nan for i, row in enumerate(self.confusion)
        )

    @property
    def accuracy(self) -> float:
        """The fraction of all images classified right."""
        right = sum(row[i] for i, row in enumerate(self.confusion))
        return right / max(sum(self.counts), 1)

    @property
    def balanced_accuracy(self) -> float:
        """The mean of the per-class accuracies: every class weighs the same, however large
        (scikit-learn's balanced_accuracy_score); 1 / classes for a model that always gives
        one answer."""
        scores = [score for score in self.per_class_accuracy if not math.isnan(score)]
        return sum(scores) / len(scores) if scores else math.nan
