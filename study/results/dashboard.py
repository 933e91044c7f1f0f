"""What a study shows in optuna-dashboard beyond Optuna's own plots.

Per trial: its learning curves as a PNG artifact (under the trial's Artifacts, next to the
checkpoint) and a trial note that shows that PNG at the top of the trial's page. Optuna attaches
artifacts only to a trial that is still running, so the objective calls `TrialCurvesPublisher`
just before the trial ends (finished or pruned), not a study callback afterwards.

Per study: the markdown summary (summary.py) as the study note, and a plotly figure of
every trial's per-epoch evaluation accuracy, both rewritten after every trial by the
`StudyNoteRefresher` callback. optuna-dashboard stores a note or figure as several storage rows
written one by one, so two workers ending trials at once could interleave their rows; each writer
therefore reads back what is stored and writes again until it is whole and no trial ended in
between (the last writer then leaves a whole, current note; see refresh_study_view).
"""

from __future__ import annotations

import random
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.artifacts import upload_artifact
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import get_note, save_note, save_plotly_graph_object

from study.attrs import DATA_ATTR, PAPER_RUN_ATTR, TEST_ACCURACY_ATTR, TEST_LOSS_ATTR
from study.optuna_private import stored_plotly_figure, trial_artifact_url
from study.results.curves import curves_figure, read_curves, save_png, trial_title
from study.results.labels import data_caption, describe_setting, number, percent
from study.results.summary import study_is_synthetic, study_summary

ACCURACY_FIGURE_ID = "catdog-accuracy-per-epoch"
SEARCHED_COLOUR = "rgba(90, 90, 90, 0.55)"  # one grey for all searched trials, as in the legend
REFRESH_ATTEMPTS = 5  # rewrites before giving up; a later trial's callback rewrites anyway
REFRESH_BACKOFF_S = 0.5  # upper end of the random wait between attempts


def curves_artifact_name(trial_number: int) -> str:
    return f"trial-{trial_number}-learning-curves.png"


@dataclass
class TrialCurvesPublisher:
    """Objective hook: attach the trial's learning curves (PNG artifact and note) as it ends."""

    artifact_store: optuna.artifacts.FileSystemArtifactStore

    def __call__(self, trial: optuna.Trial, outcome: str) -> None:
        """outcome: how the trial ends, e.g. 'complete' or 'pruned after epoch 2 of 10'."""
        try:
            self._publish(trial, outcome)
        except Exception as error:  # a missing plot must not cost a trained trial
            message = f"trial {trial.number}: learning curves not stored: {error}"
            warnings.warn(message, stacklevel=1)

    def _publish(self, trial: optuna.Trial, outcome: str) -> None:
        caption = data_caption(trial.user_attrs.get(DATA_ATTR))
        figure = curves_figure(trial, outcome, caption=caption)
        if figure is None:
            return
        with tempfile.TemporaryDirectory() as folder:
            path = save_png(figure, Path(folder) / curves_artifact_name(trial.number))
            artifact_id = upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="image/png",
            )
        # A markdown image of the artifact's URL shows the curves at the top of the trial's page.
        save_note(trial, trial_note(trial, outcome, trial_artifact_url(trial, artifact_id)))


def trial_note(trial: optuna.Trial | FrozenTrial, outcome: str, image_url: str) -> str:
    """The trial's note: how it ended, its final figures and its learning curves."""
    attrs = trial.user_attrs
    label = attrs.get(PAPER_RUN_ATTR)
    lines = [f"**{trial_title(trial, outcome)}**", ""]
    if label:
        lines += [f"The report's configuration *{label}*.", ""]
    lines += [
        f"Test loss {number(attrs.get(TEST_LOSS_ATTR))}, "
        f"test accuracy {percent(attrs.get(TEST_ACCURACY_ATTR))} (last epoch).",
    ]
    caption = data_caption(attrs.get(DATA_ATTR))
    if caption:
        lines += ["", f"_{caption}._"]
    lines += ["", f"![learning curves of trial {trial.number}]({image_url})"]
    return "\n".join(lines) + "\n"


def accuracy_figure(study: optuna.Study, trials: list[FrozenTrial]) -> go.Figure:
    """Every trial's evaluation accuracy per epoch; the report's runs drawn thicker."""
    figure = go.Figure()
    searched_shown = False
    for trial in trials:
        curves = read_curves(trial.user_attrs)
        if curves is None:
            continue
        label = trial.user_attrs.get(PAPER_RUN_ATTR)
        name = f"#{trial.number} " + (
            f"report: {label}" if label else describe_setting(trial.params)
        )
        # The report's runs each get a legend entry; searched trials share one (hover names them).
        if label:
            legend = {"name": name}
        else:
            legend = {"name": "searched trials", "legendgroup": "searched"}
            legend["showlegend"], searched_shown = not searched_shown, True
        figure.add_trace(
            go.Scatter(
                x=list(range(1, curves.epochs + 1)),
                y=[round(100 * a, 2) for a in curves.eval_accuracy],
                mode="lines+markers",
                line={
                    "width": 4 if label else 1.5,
                    "dash": "dot" if trial.state == TrialState.PRUNED else "solid",
                    **({} if label else {"color": SEARCHED_COLOUR}),
                },
                hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.1f}} %<extra></extra>",
                **legend,
            )
        )
    synthetic = " (SYNTHETIC data)" if study_is_synthetic(study) else ""
    figure.update_layout(
        title=f"Evaluation accuracy per epoch, every trial{synthetic}; dotted: pruned",
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis_title="accuracy (%)",
        template="none",  # keeps the stored figure small: no theme copied into the storage
        legend={"font": {"size": 10}, "orientation": "h", "y": -0.25},
    )
    return figure


@dataclass
class StudyNoteRefresher:
    """study.optimize callback: rewrite the study note and accuracy figure after each trial."""

    attempts: int = REFRESH_ATTEMPTS

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None = None) -> None:
        try:
            if not refresh_study_view(study, attempts=self.attempts):
                warnings.warn(
                    "the dashboard's study note kept changing; a later trial updates it",
                    stacklevel=1,
                )
        except Exception as error:  # the dashboard view must not stop the study
            warnings.warn(f"dashboard study note not refreshed: {error}", stacklevel=1)


def refresh_study_view(study: optuna.Study, *, attempts: int = REFRESH_ATTEMPTS) -> bool:
    """Write note and figure until they are stored intact and no trial ended meanwhile.

    Returns False when that never happened in `attempts` tries. A running trial's progress may
    move on in between; the next trial to end shows it.
    """
    for attempt in range(attempts):
        if attempt:
            time.sleep(random.uniform(0, REFRESH_BACKOFF_S))  # let a concurrent writer finish
        trials = study.get_trials(deepcopy=False)
        note = study_summary(study, trials)
        figure = accuracy_figure(study, trials)
        save_note(study, note)
        save_plotly_graph_object(study, figure, graph_object_id=ACCURACY_FIGURE_ID)
        intact = _stored(study) == (note, figure.to_json())
        if intact and _ended(study.get_trials(deepcopy=False)) == _ended(trials):
            return True
    return False


def _ended(trials: list[FrozenTrial]) -> list[tuple[int, TrialState]]:
    return [(t.number, t.state) for t in trials if t.state.is_finished()]


def _stored(study: optuna.Study) -> tuple[str, str | None]:
    return get_note(study), stored_plotly_figure(study, ACCURACY_FIGURE_ID)
