"""The 2022 report's four hand-run configurations and the test accuracies it published.

In code the report is "the paper", so that "report" keeps one meaning: the `catdog-study report`
command. (Optuna's `trial.report` is Optuna's.) Users still read "the report" everywhere.

Source: the 2022 deep-learning report this project reproduces; the six-block CNN on Kaggle's
chetankv/dogs-cats-images (8 000 training and 2 000 test photos at 256 px, RandomRotation(2) and
a horizontal flip), batch 128, 10 epochs, constant learning rate, trained once per row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRun:
    label: str  # how every table and figure names it, e.g. "SGD lr 0.1, shuffle on"
    optimizer: str
    lr: float
    shuffle: bool
    epochs: int
    published_test_accuracy: float  # percent, from the report (real cats vs dogs, 256 px)

    def params(self, max_epochs: int) -> dict[str, object]:
        """The four settings the report varied; epochs capped at a study's max_epochs.

        Every other TrainConfig field keeps its default, which is the report's recipe.
        """
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "shuffle": self.shuffle,
            "epochs": min(self.epochs, max_epochs),
        }


PAPER_RUNS = (
    PaperRun("SGD lr 0.1, shuffle on", "sgd", 0.1, True, 10, 74.15),
    PaperRun("Adam lr 0.01, shuffle on", "adam", 0.01, True, 10, 84.55),
    PaperRun("SGD lr 0.1, shuffle off", "sgd", 0.1, False, 10, 50.0),
    PaperRun("Adam lr 0.01, shuffle off", "adam", 0.01, False, 10, 50.0),
)
