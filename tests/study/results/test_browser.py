"""`catdog-study dashboard` in a real browser: headless Chromium from Debian's `chromium` package.

Playwright's Python package drives /usr/bin/chromium (never a browser Playwright downloads).
Where Chromium cannot start, the test fails and says why: a browser test that silently passes
would prove nothing. Only where Debian's chromium is not installed at all, and the run does not
require it (.ci/run sets CATDOG_REQUIRE_BROWSER=1 after installing it), the test is skipped with
the command that installs it, so that a newcomer's first `pytest` is not a failure.
"""

import os
import re

import optuna
import pytest

from ..helpers import fast_study_args
from ..workers import serve_dashboard

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STORAGE = "sqlite:///browser.db"
WAIT_MS = 30_000  # for the page to render what it fetched


@pytest.fixture
def served_study(run_cli, tiny_dataset, in_tmp):
    """A 3-trial study made by `catdog-study optimize`, served by `catdog-study dashboard`."""
    result = run_cli(
        *fast_study_args(tiny_dataset, "--trials", 3, "--max-epochs", 2, "--storage", STORAGE)
    )
    assert result.exit_code == 0, result.output
    with serve_dashboard(in_tmp, STORAGE) as url:
        yield url, optuna.load_study(study_name="catdog", storage=STORAGE)


@pytest.fixture
def browser_page(tmp_path):
    """A page in headless Chromium with a fresh profile; fails where Chromium cannot start."""
    if not os.path.exists(CHROMIUM) and not os.environ.get("CATDOG_REQUIRE_BROWSER"):
        pytest.skip(
            f"{CHROMIUM} is not installed: sudo apt-get install chromium (.ci/run installs it "
            "and sets CATDOG_REQUIRE_BROWSER=1, under which this test fails instead)"
        )
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as error:
        pytest.fail(f"Playwright is not installed ({error}): pip install -e '.[test]'")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1400, "height": 1000},
            )
        except Error as error:
            pytest.fail(
                f"headless Chromium could not start from {CHROMIUM} (Debian package "
                f"`chromium`; CI installs it with apt-get): {error.message.splitlines()[0]}"
            )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_dashboard_shows_the_study_its_trials_their_curves_and_checkpoints(
    browser_page, served_study, tmp_path
):  # the browser first: where it cannot start, fail before training anything
    url, study = served_study
    page = browser_page
    page.set_default_timeout(WAIT_MS)
    base = f"{url}/dashboard/studies/{study._study_id}"

    page.goto(f"{url}/dashboard")
    page.get_by_text(re.compile(r"^\d+\. catdog$")).wait_for()  # the list of studies

    page.goto(base)
    page.get_by_text("Evaluation accuracy per epoch, every trial (SYNTHETIC data)").wait_for()
    page.screenshot(path=tmp_path / "study.png", full_page=True)

    page.goto(f"{base}/note")
    page.get_by_text("The report's four configurations").wait_for()
    table = page.locator("table", has_text="SGD lr 0.1, shuffle on")
    assert "74.15 %" in table.inner_text()
    assert "this study (SYNTHETIC data)" in table.inner_text()
    page.screenshot(path=tmp_path / "study-note.png", full_page=True)

    page.goto(f"{base}/trials?numbers=1")
    for number in range(3):
        page.get_by_text(f"Trial {number}", exact=True).first.wait_for()
    page.get_by_text("Trial 1 (trial_id=").wait_for()
    # The trial's note shows its learning curves, served from the artifact store.
    curves = page.get_by_alt_text("learning curves of trial 1")
    curves.wait_for()
    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=curves.element_handle())
    assert curves.evaluate("e => e.naturalWidth") == 1000  # the 10 x 4 in PNG at 100 dpi
    page.screenshot(path=tmp_path / "trial.png")
    # Under Artifacts: the same PNG and the checkpoint, downloadable.
    checkpoint = page.get_by_text("trial-1-model.safetensors")
    checkpoint.scroll_into_view_if_needed()
    assert page.get_by_alt_text("trial-1-learning-curves.png").is_visible()
    checkpoint_id = study.trials[1].user_attrs["checkpoint_artifact_id"]
    download = page.request.get(
        f"{url}/artifacts/{study._study_id}/{study.trials[1]._trial_id}/{checkpoint_id}"
    )
    assert download.ok and len(download.body()) > 100_000  # the model's 130 k weights
    page.screenshot(path=tmp_path / "trial-artifacts.png")
    for name in ("study.png", "study-note.png", "trial.png", "trial-artifacts.png"):
        assert (tmp_path / name).stat().st_size > 10_000
