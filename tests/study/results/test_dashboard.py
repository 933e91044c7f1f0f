import json
import urllib.request

import optuna
import pytest

from ..workers import serve_dashboard


@pytest.fixture
def dashboard(in_tmp):
    """`catdog-study dashboard` on a study made here; yields its base URL."""
    storage = "sqlite:///dash.db"
    study = optuna.create_study(storage=storage, study_name="shown-study")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with serve_dashboard(in_tmp, storage, "--artifact-dir", "artifacts") as url:
        yield url


def test_dashboard_answers_on_loopback_with_the_study(dashboard):
    with urllib.request.urlopen(dashboard + "/api/studies", timeout=10) as response:
        studies = json.load(response)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["shown-study"]
