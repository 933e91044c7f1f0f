"""Every way a run ends: killed, taken over, stopped by a signal, its output closed, its parent
gone. No trial is lost, none is queued twice, and each FAIL says why."""

import errno
import os
import re
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

import study.run.objective as objective_module
import study.run.reporter as reporter_module
from catdog.paper import PAPER_RUNS
from study.attrs import (
    CHECKPOINT_ATTR,
    FAIL_REASON_ATTR,
    PAPER_RUN_ATTR,
    RESUME_ATTR,
    WORKER_ATTR,
)
from study.store.resume import requeue

from ..helpers import fast_study_args
from ..workers import start_worker, trials_of, wait_all, wait_for

STORAGE = "sqlite:///study.db"
LONG = {"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 40}
COMMON = ["--storage", STORAGE, "--max-epochs", 40, "--pruner", "none", "--no-seed-configs"]
FAST = ["--device", "cpu", "--precision", "fp32"]
AGAIN = "Run the same command again to continue the study."


def _queue(*params: dict) -> None:
    study = optuna.create_study(storage=STORAGE, study_name="catdog", load_if_exists=True)
    for values in params:
        study.enqueue_trial(values)


def _checkpointed(number: int, epoch: int = 2):
    def ready() -> bool:
        trials = {t.number: t for t in trials_of(STORAGE)}
        trial = trials.get(number)
        return trial is not None and trial.user_attrs.get(RESUME_ATTR, {}).get("epoch", 0) >= epoch

    return ready


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (not yet reaped) is gone too.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_killed_worker_s_trial_resumes_in_the_next_run_at_once(in_tmp, tiny_dataset):
    # Default heartbeat and grace period (30 s, 120 s): the next run must not wait for them.
    _queue(LONG)
    args = ["--data", tiny_dataset, *COMMON, *FAST, "--trials", 1]
    first = start_worker(in_tmp, "first.log", *args)
    wait_for(_checkpointed(0), what="a checkpoint of trial 0")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert trials_of(STORAGE)[0].state == TrialState.RUNNING

    second = start_worker(in_tmp, "second.log", *args)
    assert wait_all([second]) == [0], (in_tmp / "second.log").read_text()
    killed, resumed = trials_of(STORAGE)
    assert killed.state == TrialState.FAIL
    reason = killed.user_attrs[FAIL_REASON_ATTR]
    assert f"its worker (process {first.pid} on " in reason and "ended without finishing" in reason
    assert resumed.state == TrialState.COMPLETE
    assert resumed.user_attrs["resumed_from"]["trial"] == 0
    log = (in_tmp / "second.log").read_text()
    assert "trial 0: its worker" in log and "trial 1 resumes trial 0" in log


def test_a_trial_taken_over_by_another_worker_is_one_line_and_the_worker_goes_on(
    run_cli, tiny_dataset, monkeypatch
):
    _queue({**LONG, "epochs": 4})
    reporter = reporter_module.EpochReporter.__call__

    def taken_over_after_epoch_2(self, metrics, state):
        reporter(self, metrics, state)
        if self.trial.number == 0 and metrics.epoch == 2:  # as another worker's sweep would
            other = optuna.load_study(study_name="catdog", storage=STORAGE)
            other.tell(0, state=TrialState.FAIL)
            requeue(other, 0)

    monkeypatch.setattr(reporter_module.EpochReporter, "__call__", taken_over_after_epoch_2)
    result = run_cli(*fast_study_args(tiny_dataset, *COMMON, "--trials", 2))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "trial 0 was taken over by another worker" in result.output
    taken, resumed = trials_of(STORAGE)[:2]
    assert taken.state == TrialState.FAIL
    assert resumed.state == TrialState.COMPLETE
    assert resumed.user_attrs["resumed_from"] == {"trial": 0, "epoch": 2}


@pytest.mark.parametrize("fuse", [1, 2])
def test_ctrl_c_while_optuna_asks_for_a_trial_leaves_none_running(
    run_cli, tiny_dataset, monkeypatch, fuse
):
    before_trial = optuna.samplers.TPESampler.before_trial

    def ctrl_c_while_trial_1_is_asked(self, study, trial):
        if trial.number == 1:
            os.kill(os.getpid(), signal.SIGINT)  # lands here, inside study.ask()
        return before_trial(self, study, trial)

    monkeypatch.setattr(optuna.samplers.TPESampler, "before_trial", ctrl_c_while_trial_1_is_asked)
    args = [*COMMON, "--max-epochs", 2, "--trials", 3, "--fuse", fuse]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("interrupted: ")
    trials = trials_of(STORAGE)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert trials[1].state == TrialState.FAIL
    reason = trials[1].user_attrs[FAIL_REASON_ATTR]
    assert reason == "interrupted by the user after epoch 0; queued again to resume"
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert 1 in [t.system_attrs["failed_trial"] for t in queued]


@pytest.mark.parametrize("where", ["keep", "ending"])
def test_a_stop_after_a_trial_s_last_epoch_keeps_it_complete(
    run_cli, tiny_dataset, monkeypatch, where
):
    # Ctrl-C while the trial that trained all its epochs keeps its model file or draws its
    # curves: it failed without a reason before, its epochs lost.
    original = getattr(objective_module.Objective, where)

    def ctrl_c_then_go_on(self, trial, *args):
        if trial.number == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, trial, *args)

    monkeypatch.setattr(objective_module.Objective, where, ctrl_c_then_go_on)
    _queue({**LONG, "epochs": 2}, {**LONG, "epochs": 2})
    result = run_cli(*fast_study_args(tiny_dataset, *COMMON, "--trials", 2))
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("interrupted while no trial was running")
    trials = trials_of(STORAGE)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.WAITING]
    assert trials[0].user_attrs["epoch_test_loss"] and trials[0].user_attrs[CHECKPOINT_ATTR]


def test_an_output_closed_at_a_trial_s_last_epoch_keeps_it_complete(
    run_cli, tiny_dataset, monkeypatch
):
    # `optimize | head` whose last line is trial 0's last epoch: stopped there at once before,
    # it failed a trial that had trained all its epochs.
    import study.run.display as display_module

    line = display_module.PlainDisplay.line

    def closed_after_trial_0_s_last_epoch(self, text):
        if "trial 0 epoch  2/2" in text:
            raise OSError(errno.EPIPE, "Broken pipe")
        line(self, text)

    monkeypatch.setattr(display_module.PlainDisplay, "line", closed_after_trial_0_s_last_epoch)
    _queue({**LONG, "epochs": 2}, {**LONG, "epochs": 2})
    result = run_cli(*fast_study_args(tiny_dataset, *COMMON, "--trials", 2))
    assert result.exit_code == 141, result.output
    assert "Traceback" not in result.output
    states = [t.state for t in trials_of(STORAGE)]
    assert states == [TrialState.COMPLETE, TrialState.WAITING]


@pytest.mark.parametrize("when", ["between two members' reports", "as the ended are told"])
def test_a_stop_as_fused_trials_end_keeps_every_one_that_ended(
    run_cli, tiny_dataset, monkeypatch, when
):
    reporter, keep = reporter_module.EpochReporter.__call__, objective_module.Objective.keep

    def ctrl_c_after_trial_0_s_last_report(self, metrics, state):
        reporter(self, metrics, state)
        if when.startswith("between") and self.trial.number == 0 and metrics.epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    def ctrl_c_as_trial_0_is_kept(self, trial, *args):
        if when.startswith("as") and trial.number == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return keep(self, trial, *args)

    monkeypatch.setattr(
        reporter_module.EpochReporter, "__call__", ctrl_c_after_trial_0_s_last_report
    )
    monkeypatch.setattr(objective_module.Objective, "keep", ctrl_c_as_trial_0_is_kept)
    _queue(*[{**LONG, "epochs": 2}] * 3, LONG)
    args = [*COMMON, "--trials", 3, "--fuse", 3]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("interrupted while no trial was running")
    states = [t.state for t in trials_of(STORAGE)]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.WAITING]


def test_a_trial_left_by_a_worker_killed_while_it_was_asked_is_taken_over(run_cli, tiny_dataset):
    # Its worker died inside study.ask(): the trial has no worker recorded and no heartbeat.
    args = [*COMMON, "--max-epochs", 1, "--trials", 1, "--heartbeat", 1]
    assert run_cli(*fast_study_args(tiny_dataset, *args)).exit_code == 0
    optuna.load_study(study_name="catdog", storage=STORAGE).ask()
    # Within the grace period it may be a worker still asking: left alone.
    result = run_cli(*fast_study_args(tiny_dataset, *args, "--grace-period", 60))
    assert result.exit_code == 0, result.output
    assert trials_of(STORAGE)[1].state == TrialState.RUNNING
    time.sleep(2.5)
    result = run_cli(*fast_study_args(tiny_dataset, *args, "--grace-period", 2))
    assert result.exit_code == 0, result.output
    trials = trials_of(STORAGE)
    assert trials[1].state == TrialState.FAIL
    reason = trials[1].user_attrs[FAIL_REASON_ATTR]
    assert reason.startswith("no worker recorded itself on it nor sent a heartbeat in 2 s")
    assert "trial 1: no worker recorded itself" in result.output
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert [t.system_attrs.get("failed_trial") for t in trials].count(1) == 1  # queued once


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--heartbeat", 30, "--grace-period", 2], "--grace-period 2 is too short"),
        (["--heartbeat", 200, "--grace-period", 120], "use at least 400 s"),
    ],
)
def test_a_grace_period_shorter_than_two_heartbeats_is_refused(
    run_cli, in_tmp, tiny_dataset, args, message
):
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, *args))
    assert result.exit_code == 2 and message in result.output
    assert not (in_tmp / "storage").exists()


def _interrupt_at_epoch(monkeypatch, signum: int, number: int = 0, epoch: int = 2) -> None:
    """Stop the run as that signal would, after `epoch` of trial `number`."""
    reporter = reporter_module.EpochReporter.__call__

    def stop_there(self, metrics, state):
        reporter(self, metrics, state)
        if self.trial.number == number and metrics.epoch == epoch:
            self.objective.stops.stop(signum)

    monkeypatch.setattr(reporter_module.EpochReporter, "__call__", stop_there)


@pytest.mark.parametrize(
    ("signum", "code", "cause"),
    [
        (signal.SIGINT, 130, "interrupted by the user"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
        (signal.SIGHUP, 129, "stopped: the terminal closed (SIGHUP)"),
        (signal.SIGPIPE, 141, "stopped: the output was closed (broken pipe)"),
    ],
)
def test_each_stop_marks_the_trial_with_its_cause_and_queues_it_again(
    run_cli, tiny_dataset, monkeypatch, signum, code, cause
):
    _queue({**LONG, "epochs": 4})
    _interrupt_at_epoch(monkeypatch, signum)
    result = run_cli(*fast_study_args(tiny_dataset, *COMMON, "--trials", 1))
    assert result.exit_code == code, result.output
    assert "running trial is marked FAIL and queued again" in result.output
    stopped, queued = trials_of(STORAGE)
    assert stopped.user_attrs[FAIL_REASON_ATTR] == f"{cause} after epoch 2; queued again to resume"
    assert queued.state == TrialState.WAITING and queued.params == stopped.params
    assert FAIL_REASON_ATTR not in queued.user_attrs and WORKER_ATTR not in queued.user_attrs


SHORT = ["--storage", STORAGE, "--max-epochs", 2, "--pruner", "none", "--trials", 1]


def test_an_interrupted_re_run_is_not_queued_again_by_the_same_command(run_cli, tiny_dataset):
    _queue({**LONG, "epochs": 2})
    first = run_cli(*fast_study_args(tiny_dataset, *SHORT, "--no-seed-configs"))
    assert first.exit_code == 0, first.output
    rerun = [*SHORT, "--no-seed-configs", "--enqueue-trial", 0]
    with pytest.MonkeyPatch.context() as patch:
        _interrupt_at_epoch(patch, signal.SIGINT, number=1, epoch=1)
        assert run_cli(*fast_study_args(tiny_dataset, *rerun)).exit_code == 130
    again = run_cli(*fast_study_args(tiny_dataset, *rerun))  # as the message advises
    assert again.exit_code == 0, again.output
    assert "a re-run of catdog trial 0 is already queued (trial 2)" in again.output
    states = [t.state for t in trials_of(STORAGE)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]


def test_an_interrupted_report_run_is_not_queued_again_by_the_same_command(run_cli, tiny_dataset):
    with pytest.MonkeyPatch.context() as patch:
        _interrupt_at_epoch(patch, signal.SIGINT, number=0, epoch=1)
        assert run_cli(*fast_study_args(tiny_dataset, *SHORT)).exit_code == 130
    again = run_cli(*fast_study_args(tiny_dataset, *SHORT, "--trials", 4))
    assert again.exit_code == 0, again.output
    assert "queued the report's" not in again.output
    trials = trials_of(STORAGE)
    assert [t.state for t in trials].count(TrialState.WAITING) == 0
    done = [t.user_attrs[PAPER_RUN_ATTR] for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(done) == sorted(run.label for run in PAPER_RUNS)  # each once


def test_a_dead_local_trial_is_queued_once_by_runs_after_it(run_cli, tiny_dataset):
    from study.run.takeover import WorkerProcess

    _queue({**LONG, "epochs": 1})
    trial = optuna.load_study(study_name="catdog", storage=STORAGE).ask()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    )
    here = WorkerProcess.this()
    trial.set_user_attr(
        WORKER_ATTR, WorkerProcess(here.host, int(ended.stdout), here.boot, "1").to_attr()
    )
    for _ in range(2):  # the second run finds nothing left to take over
        result = run_cli(*fast_study_args(tiny_dataset, *SHORT, "--no-seed-configs"))
        assert result.exit_code == 0, result.output
    trials = trials_of(STORAGE)
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert "ended without finishing it" in trials[0].user_attrs[FAIL_REASON_ATTR]


def _two_workers_training(folder, data, epochs: int = 40):
    """`optimize --jobs 2` once both workers have checkpointed; the command and worker pids.

    A test that needs both trials still running when it stops the run asks for more epochs than
    any machine trains before it acts (on a loaded CPU, worker 0 once trained all 40 of LONG's
    while worker 1 was still starting)."""
    _queue(*[{**LONG, "epochs": epochs}] * 2)
    args = ["--data", data, *COMMON, "--max-epochs", epochs, *FAST, "--trials", 2, "--jobs", 2]
    command = start_worker(folder, "jobs.log", *args)
    wait_for(_checkpointed(0), what="a checkpoint of trial 0")
    wait_for(_checkpointed(1), what="a checkpoint of trial 1")
    return command, [t.user_attrs[WORKER_ATTR]["pid"] for t in trials_of(STORAGE)[:2]]


def test_sigterm_stops_every_worker_and_queues_their_trials(in_tmp, tiny_dataset):
    command, workers = _two_workers_training(in_tmp, tiny_dataset, epochs=1000)
    os.kill(command.pid, signal.SIGTERM)
    assert wait_all([command]) == [143]
    log = (in_tmp / "jobs.log").read_text()
    assert "Traceback" not in log
    last = log.splitlines()[-1]
    assert last.startswith("stopped by SIGTERM: every worker stopped; the running trials are")
    assert last.endswith("queued again to resume (0, 1); every finished trial is kept. " + AGAIN)
    wait_for(lambda: all(_gone(pid) for pid in workers), timeout=30, what="workers to end")
    trials = trials_of(STORAGE)
    assert TrialState.RUNNING not in [t.state for t in trials]
    for trial in trials[:2]:
        assert trial.user_attrs[FAIL_REASON_ATTR].startswith("stopped by SIGTERM after epoch")
    assert [t.state for t in trials[2:]] == [TrialState.WAITING] * 2


def test_ctrl_c_stops_the_run_after_one_worker_finished_its_share(in_tmp, tiny_dataset):
    # One worker's share is the 1-epoch trial: it ends and exits while the other trains. The
    # stop must still reach the one left (it hung, waiting on the one that had exited).
    _queue({**LONG, "epochs": 1}, {**LONG, "epochs": 400})
    args = ["--data", tiny_dataset, *COMMON, "--max-epochs", 400, *FAST, "--trials", 2]
    command = start_worker(in_tmp, "jobs.log", *args, "--jobs", 2)
    wait_for(_checkpointed(1), what="a checkpoint of trial 1")
    wait_for(lambda: trials_of(STORAGE)[0].state == TrialState.COMPLETE, what="trial 0 to finish")
    finished = trials_of(STORAGE)[0].user_attrs[WORKER_ATTR]["pid"]
    wait_for(lambda: _gone(finished), timeout=60, what="the finished worker to exit")
    os.kill(command.pid, signal.SIGINT)
    assert wait_all([command], timeout=60) == [130]
    log = (in_tmp / "jobs.log").read_text()
    assert "Traceback" not in log, log
    assert log.splitlines()[-1].startswith(
        "interrupted: every worker stopped; the running trial is marked FAIL and queued again "
        "to resume (trial 1)"
    ), log
    states = [t.state for t in trials_of(STORAGE)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]


def test_a_killed_worker_is_named_and_its_trial_queued_again_before_the_run_ends(
    in_tmp, tiny_dataset
):
    command, _ = _two_workers_training(in_tmp, tiny_dataset)
    killed = trials_of(STORAGE)[1].user_attrs[WORKER_ATTR]
    os.kill(killed["pid"], signal.SIGKILL)  # out of memory, say
    assert wait_all([command], timeout=120) == [1]
    log = (in_tmp / "jobs.log").read_text()
    last = log.splitlines()[-1]
    assert re.fullmatch(
        r"Error: 1 of 2 workers ended with an error: worker [01] was killed by SIGKILL", last
    ), log
    trials = trials_of(STORAGE)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert "ended without finishing it; queued again" in trials[1].user_attrs[FAIL_REASON_ATTR]


def test_a_closed_terminal_stops_every_worker_without_a_traceback(in_tmp, tiny_dataset):
    # SIGHUP reaches the whole process group, multiprocessing's resource tracker too.
    _queue(LONG, LONG)
    args = ["--data", tiny_dataset, *COMMON, *FAST, "--trials", 2, "--jobs", 2]
    with open(in_tmp / "jobs.log", "w") as log:
        command = subprocess.Popen(
            [sys.executable, "-m", "study", "optimize", *map(str, args)],
            cwd=in_tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    wait_for(_checkpointed(0), what="a checkpoint of trial 0")
    wait_for(_checkpointed(1), what="a checkpoint of trial 1")
    os.killpg(command.pid, signal.SIGHUP)
    assert wait_all([command]) == [129]
    time.sleep(1)  # what a dying resource tracker would still print
    log = (in_tmp / "jobs.log").read_text()
    assert "Traceback" not in log and "resource_tracker" not in log, log
    assert log.splitlines()[-1].startswith("stopped: the terminal closed (SIGHUP): every worker")


def test_a_stop_as_the_workers_start_stops_them(in_tmp, tiny_dataset):
    # The moment the command has started its first worker (its second child, after the
    # resource tracker): the stop was lost there, and every trial ran.
    _queue(LONG, LONG)
    args = ["--data", tiny_dataset, *COMMON, *FAST, "--trials", 2, "--jobs", 2]
    command = start_worker(in_tmp, "jobs.log", *args)
    wait_for(lambda: len(_children(command.pid)) >= 2, timeout=120, what="a worker")
    os.kill(command.pid, signal.SIGTERM)
    assert wait_all([command], timeout=120) == [143], (in_tmp / "jobs.log").read_text()
    log = (in_tmp / "jobs.log").read_text()
    assert "Traceback" not in log and log.splitlines()[-1].startswith("stopped by SIGTERM"), log
    states = [t.state for t in trials_of(STORAGE)]
    assert TrialState.RUNNING not in states and TrialState.COMPLETE not in states


def _children(pid: int) -> list[str]:
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listed:
            children += listed.read().split()
    return children


def test_workers_stop_by_themselves_when_their_command_dies(in_tmp, tiny_dataset):
    command, workers = _two_workers_training(in_tmp, tiny_dataset, epochs=1000)
    os.kill(command.pid, signal.SIGKILL)
    command.wait()
    wait_for(lambda: all(_gone(pid) for pid in workers), timeout=30, what="orphans to stop")
    wait_for(
        lambda: TrialState.RUNNING not in [t.state for t in trials_of(STORAGE)],
        timeout=30,
        what="the orphans' trials to be queued again",
    )
    for trial in trials_of(STORAGE)[:2]:
        assert "the command that started this worker ended" in trial.user_attrs[FAIL_REASON_ATTR]


def test_a_closed_output_stops_the_run_like_ctrl_c(in_tmp, tiny_dataset):
    _queue(LONG)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = subprocess.Popen(
        [sys.executable, "-m", "study", "optimize", "--data", str(tiny_dataset)]
        + [str(a) for a in [*COMMON, *FAST, "--trials", 1]],
        cwd=in_tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    lines = []  # `| head -N`, N reaching the first epoch's line, so that a trial is running
    while not any(b"train loss" in line for line in lines):
        lines.append(command.stdout.readline())
        assert lines[-1] and len(lines) < 40, lines
    command.stdout.close()
    assert command.wait(timeout=120) == 141
    stderr = command.stderr.read().decode()
    assert "stopped: the output was closed" in stderr and "Traceback" not in stderr
    stopped, queued = trials_of(STORAGE)
    assert stopped.user_attrs[FAIL_REASON_ATTR].startswith("stopped: the output was closed")
    assert queued.state == TrialState.WAITING


@pytest.mark.parametrize("delay", [0.5, 1.5, 2.5, 3.5, 5.0])
def test_ctrl_c_at_any_moment_ends_the_run_with_its_message(in_tmp, tiny_dataset, delay):
    # Long enough that even a fast machine is still running when the signal comes (on CI's,
    # the 40 tiny epochs of LONG ended before 5 s and the signal came after the command).
    _queue({**LONG, "epochs": 400})
    command = start_worker(
        in_tmp,
        "run.log",
        "--data",
        tiny_dataset,
        *COMMON,
        *FAST,
        "--trials",
        1,
        "--max-epochs",
        400,
    )
    time.sleep(delay)
    os.kill(command.pid, signal.SIGINT)
    assert wait_all([command]) == [130]
    log = (in_tmp / "run.log").read_text()
    assert "Traceback" not in log and "Exception ignored" not in log, log
    assert "interrupted" in log.splitlines()[-1], log
    assert TrialState.RUNNING not in [t.state for t in trials_of(STORAGE)]


def test_the_study_keeps_the_precision_it_chose(run_cli, tiny_dataset, monkeypatch):
    args = ["--storage", STORAGE, "--trials", 1, "--max-epochs", 1, "--no-seed-configs"]
    first = run_cli(
        "optimize", "--data", tiny_dataset, "--device", "cpu", "--precision", "fp32", *args
    )
    assert first.exit_code == 0, first.output
    # A CPU with bf16 instructions would choose bf16: the study trains in fp32 all the same.
    monkeypatch.setattr("catdog.device.cpu_features", lambda: frozenset({"avx512_bf16"}))
    second = run_cli("optimize", "--data", tiny_dataset, "--device", "cpu", *args)
    assert second.exit_code == 0, second.output
    assert "precision: fp32 (this study's, chosen when it first ran on cpu)" in second.output
    assert [t.user_attrs["precision"] for t in trials_of(STORAGE)] == ["fp32", "fp32"]
    mixed = run_cli(
        "optimize", "--data", tiny_dataset, "--device", "cpu", "--precision", "bf16", *args
    )
    assert mixed.exit_code == 1
    assert "this study trains in fp32 on cpu" in mixed.output
