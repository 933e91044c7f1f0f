"""What a user sees while a study runs: a live bar on a terminal, progress lines in a pipe."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from study.run.display import Tally

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"
ARGS = ["--storage", STORAGE, "--max-epochs", 2, "--no-seed-configs", "--pruner", "none"]


def test_the_tally_counts_this_command_s_trials_and_the_best_so_far():
    tally = Tally(total=4, started=0.0)
    tally.trial(7, 1, 4)  # trial numbers count across the study: this command's first is 7
    tally.ended(7, "COMPLETE", 0.41, 0.84)
    tally.ended(8, "PRUNED", None, 0.5)
    tally.ended(9, "COMPLETE", 0.52, 0.80)
    tally.trial(10, 2, 4)
    assert (tally.done, tally.pruned, tally.best_trial) == (3, 1, 7)
    assert tally.fraction == 3.5  # trial 10 is half way
    summary = tally.summary()
    assert summary.startswith("3 of 4 trials done (1 pruned) · trial 10 epoch 2/4 · best #7")
    assert "0.4100 (84.0%)" in summary and "left" in summary


def test_the_tally_breaks_equal_values_by_the_loss_as_the_summary_does():
    # Ranked by accuracy, equal accuracies are common; the end of the run (study.results.best)
    # then calls the trial with the lower loss best, and so must the progress line before it.
    tally = Tally(total=3, started=0.0)
    tally.ended(0, "COMPLETE", 0.3, 0.7, 0.69)
    tally.ended(1, "COMPLETE", 0.3, 0.7, 0.61)
    tally.ended(2, "COMPLETE", 0.3, 0.7, 0.65)
    assert "best #1 0.3000 (70.0%)" in tally.summary()


def test_the_time_left_follows_the_pace_so_far(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("study.run.display.time.monotonic", lambda: now[0])
    tally = Tally(total=4)
    assert tally.left_s is None  # no pace yet
    now[0] = 160.0
    tally.ended(0, "COMPLETE", 0.5, 0.7)
    assert tally.left_s == 180.0  # a minute a trial, three to go


def test_a_piped_run_prints_plain_lines_and_progress_lines(run_cli, tiny_dataset):
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 2))
    assert result.exit_code == 0, result.output
    assert "decoded 40 of 40 images" in result.output  # a new set: decoding is reported
    assert "  trial 0 epoch  1/" in result.output
    progress = [line for line in result.output.splitlines() if line.startswith("progress:")]
    assert progress[0].startswith("progress: 1 of 2 trials done")
    assert progress[-1].startswith("progress: 2 of 2 trials done")


def test_quiet_prints_only_the_end_of_the_run(run_cli, tiny_dataset):
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 1, "--quiet"))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("study 'catdog' in sqlite:///study.db: 1 trials"), lines
    assert lines[1].startswith("best trial 0:")


def test_the_hints_carry_the_options_that_find_the_study_again(run_cli, tiny_dataset):
    args = [*ARGS, "--trials", 1, "--study-name", "mine"]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    find = "--storage sqlite:///study.db --study-name mine"
    assert f"catdog-study dashboard {find}" in result.output
    assert f"catdog-study report {find}" in result.output
    assert f"catdog-study export {find} --out best.safetensors" in result.output


def test_a_terminal_run_shows_a_live_bar_below_the_scrolling_lines(in_tmp, tiny_dataset):
    screen, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    args = fast_study_args(tiny_dataset, *ARGS, "--trials", 2)
    command = subprocess.Popen(
        [sys.executable, "-m", "study", *map(str, args)],
        cwd=in_tmp,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(screen, 65536)
        except OSError:  # the command closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert command.wait(timeout=60) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    # The bar is redrawn in place (\r) with the tally, and cleared for each line above it.
    bars = [part for part in text.split("\r") if "%|" in part]
    assert any("1 of 2 trials done" in bar for bar in bars), text
    assert any("trial 1 epoch 1/" in bar for bar in bars), text
    assert "  trial 1 epoch  2/" in text and "progress: 2 of 2 trials done" in text


def test_a_finished_trial_s_line_gives_its_last_epoch_s_loss_not_its_error(run_cli, tiny_dataset):
    # The study ranks by accuracy (the default): its value is 1 - accuracy, not a loss.
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 1))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    last_epoch = [line for line in lines if line.startswith("  trial 0 epoch  2/2")][0]
    finished = [line for line in lines if line.startswith("trial 0 finished:")][0]
    loss = last_epoch.split("test loss ")[1].split()[0]
    accuracy = last_epoch.split("test loss ")[1].split("acc")[1].split()[0]
    assert finished.startswith(f"trial 0 finished: test loss {loss}, test accuracy"), finished
    assert f"test accuracy {accuracy}" in finished
