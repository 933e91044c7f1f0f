"""The best trial's answers on the test set, class by class: what `report` adds to accuracy.

A trial stores its test accuracy, not the answers behind it. Here the best trial's stored model
classifies the test set again (on the CPU, in the precision it trained in): its confusion matrix,
each class's accuracy, and, where the test set's classes differ in size by more than 1.5 times,
balanced accuracy (the mean of the classes' accuracies), which a model cannot raise by favouring
the larger classes. Nothing is written: the model is read through a temporary folder, and the
test set from the cache when it is there, else decoded and not kept.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial

from catdog.cache import read_split
from catdog.classes import ClassScores, imbalance, is_imbalanced
from catdog.dataset import DatasetError, find_dataset
from catdog.errors import CatdogError
from catdog.modelfile import ModelFileError
from catdog.names import printable
from catdog.scores import class_scores
from catdog.train import DeviceImages
from study.attrs import DATA_ATTR, TEST_ACCURACY_ATTR
from study.data.source import cache_dir_for, described_folder
from study.results.best import best_trial
from study.results.labels import percent
from study.store.export import ExportError, export_checkpoint

CONFUSION_PNG = "confusion-matrix.png"


class NoAnswers(CatdogError):
    """The best trial's answers cannot be computed; the message says why."""


@dataclass(frozen=True)
class TestAnswers:
    trial: FrozenTrial  # the best trial
    class_names: tuple[str, ...]  # labels, in class order
    scores: ClassScores  # its answers on the test set
    test_folder: Path
    own_test_set: bool = True  # the test set of the folder it trained on, not another --data

    @property
    def imbalanced(self) -> bool:
        """The test set's classes differ in size by more than 1.5 times: balanced accuracy
        is shown beside accuracy."""
        return is_imbalanced(self.scores.counts)


def best_trial_answers(
    study: optuna.Study,
    trials: list[FrozenTrial],
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    data: Path | None = None,
) -> TestAnswers:
    """The best trial's answers on the test set of `data` (default: the folder the trial was
    trained on, as its data attr names it). NoAnswers when there is no finished trial, no
    model, no such data set, or one of other classes than the model's."""
    best = best_trial(trials)
    if best is None:
        raise NoAnswers("no trial has finished yet")
    trained_on = described_folder(best.user_attrs.get(DATA_ATTR))
    folder = data or trained_on
    if folder is None:
        raise NoAnswers(f"trial {best.number} does not name its data folder: give --data")
    try:
        layout = find_dataset(folder)
    except DatasetError as error:
        raise NoAnswers(f"{error}; give --data with the set trial {best.number} learned") from None
    with tempfile.TemporaryDirectory() as temporary:
        try:
            _, model_file = export_checkpoint(
                study, artifact_store, Path(temporary) / "model.safetensors", best.number
            )
        except (ExportError, ModelFileError) as error:
            raise NoAnswers(str(error)) from None
    if layout.labels != model_file.class_names:
        raise NoAnswers(
            f"{printable(layout.root)} has the classes {', '.join(layout.labels)}; trial "
            f"{best.number} learned {', '.join(model_file.class_names)}: give --data"
        )
    test_folder = layout.root / layout.test
    test_set = read_split(
        test_folder,
        model_file.image_size,
        cache_dir_for(layout.root),
        warn=False,
        write_cache=False,  # a command that only reads
    )
    precision = model_file.info.get("precision", "fp32")
    images = DeviceImages.from_image_set(test_set, torch.device("cpu"))
    scores = class_scores(model_file.model, images, precision)
    own = trained_on is not None and _same_folder(folder, trained_on)
    return TestAnswers(best, model_file.class_names, scores, test_folder, own)


def _same_folder(one: Path, other: Path) -> bool:
    """True when both name the same folder (a relative one seen from here)."""
    try:
        return Path(one).resolve() == Path(other).resolve()
    except OSError:
        return False


def answer_lines(answers: TestAnswers) -> list[str]:
    """The terminal's lines: each class's accuracy, and balanced accuracy where it matters."""
    scores = answers.scores
    lines = [
        f"best trial {answers.trial.number} on {printable(answers.test_folder)}, class by class "
        f"(accuracy {percent(scores.accuracy)}{_stored(answers)}):"
    ]
    width = max(len(name) for name in answers.class_names)
    for name, count, accuracy in zip(
        answers.class_names, scores.counts, scores.per_class_accuracy, strict=True
    ):
        lines.append(f"  {name:<{width}}  {percent(accuracy):>7} of {count} images right")
    if answers.imbalanced:
        lines.append(f"  balanced accuracy {percent(scores.balanced_accuracy)} {_why(scores)}")
    return lines


def answers_markdown(answers: TestAnswers) -> str:
    """summary.md's section: the confusion matrix as a table with each class's accuracy."""
    names, scores = answers.class_names, answers.scores
    lines = [
        "### Best trial, class by class",
        "",
        f"Trial #{answers.trial.number}'s answers on the test set "
        f"(`{printable(answers.test_folder)}`), from its stored model: accuracy "
        f"{percent(scores.accuracy)}{_stored(answers)}. Rows: the class an image is; columns: "
        "the model's answer.",
        "",
        "| class (test images) | "
        + " | ".join(f"answer {name}" for name in names)
        + " | accuracy |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for name, row, count, accuracy in zip(
        names, scores.confusion, scores.counts, scores.per_class_accuracy, strict=True
    ):
        cells = " | ".join(str(n) for n in row)
        lines.append(f"| {name} ({count}) | {cells} | {percent(accuracy)} |")
    if answers.imbalanced:
        lines += ["", f"Balanced accuracy {percent(scores.balanced_accuracy)} {_why(scores)}."]
    return "\n".join(lines) + "\n"


def _why(scores: ClassScores) -> str:
    """Why balanced accuracy is shown: what it is, and how unequal the classes are."""
    return (
        "(the mean of the classes' accuracies): the test set's classes differ in size up to "
        f"{imbalance(scores.counts):.1f} times, and plain accuracy favours the larger ones"
    )


def _stored(answers: TestAnswers) -> str:
    """Where the stored test accuracy differs (another test set, another device): both."""
    stored = answers.trial.user_attrs.get(TEST_ACCURACY_ATTR)
    if stored is None or abs(stored - answers.scores.accuracy) < 1e-9:
        return ""
    if not answers.own_test_set:
        return f"; the trial stored {percent(stored)} on the test set it trained with"
    return f"; the trial stored {percent(stored)}, scored on its own device"


def confusion_figure(answers: TestAnswers, caption: str = "") -> Figure:
    """The confusion matrix: each cell's count and its share of its row (the true class),
    coloured by that share, so that classes of different sizes read alike."""
    names, scores = answers.class_names, answers.scores
    shares = [
        [n / count if count else 0.0 for n in row]
        for row, count in zip(scores.confusion, scores.counts, strict=True)
    ]
    side = 2.2 + 0.9 * len(names)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(scores.confusion):
        for j, count in enumerate(row):
            colour = "white" if shares[i][j] > 0.6 else "black"
            text = f"{count}\n{100 * shares[i][j]:.1f} %"
            axes.text(j, i, text, ha="center", va="center", color=colour, fontsize="small")
    axes.set_xticks(range(len(names)), names)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("the model's answer")
    axes.set_ylabel("the class the image is")
    figure.colorbar(image, ax=axes, label="share of the class's test images")
    title = (
        f"Best trial {answers.trial.number} on the test set: accuracy {percent(scores.accuracy)}"
    )
    if answers.imbalanced:
        title += f", balanced {percent(scores.balanced_accuracy)}"
    axes.set_title(f"{title}\n{caption}" if caption else title, fontsize="medium")
    return figure
