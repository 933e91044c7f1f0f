import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(in_tmp):
    """`catdog-study dashboard` on a study made here; yields its base URL."""
    storage = "sqlite:///dash.db"
    study = optuna.create_study(storage=storage, study_name="shown-study")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from study.cli import main; main()",
            "dashboard",
            "--port",
            str(port),
            "--storage",
            storage,
            "--artifact-dir",
            "artifacts",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/api/studies", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dashboard did not start:\n{process.stdout.read()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_dashboard_answers_on_loopback_with_the_study(dashboard):
    with urllib.request.urlopen(dashboard + "/api/studies", timeout=10) as response:
        studies = json.load(response)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["shown-study"]
