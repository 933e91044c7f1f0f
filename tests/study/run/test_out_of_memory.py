"""Memory that runs out fails that trial, with a reason that names the batch size and image size,
and the study goes on; a fused group that does not fit goes on with fewer trials at once."""

import os
import subprocess
import sys

import optuna
import pytest
import torch
from optuna.trial import TrialState

import catdog.train as train_module
import study.run.objective as objective_module
from catdog.fused import FusedTrainer
from study.attrs import FAIL_REASON_ATTR

from ..helpers import fast_study_args
from ..workers import trials_of

STORAGE = "sqlite:///study.db"
COMMON = ["--storage", STORAGE, "--no-seed-configs", "--pruner", "none"]
ADVICE = (
    "try a smaller --image-size, fewer --jobs or --fuse, or a --space file with smaller batch "
    "sizes"
)
# The errors as torch raises them: its CPU allocator's (a plain RuntimeError) and CUDA's.
CPU_REFUSAL = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 2684354560 bytes. Error code 12 (Cannot allocate memory)"
)
CUDA_REFUSAL = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has 1.20 GiB free."
KINDS = {
    "cpu": (lambda: RuntimeError(CPU_REFUSAL), "out of memory (2.5 GiB refused)"),
    "cuda": (
        lambda: torch.OutOfMemoryError(CUDA_REFUSAL),
        "out of device memory (2.00 GiB refused)",
    ),
}


def _queue(*lrs: float, epochs: int = 2) -> None:
    study = optuna.create_study(storage=STORAGE, study_name="catdog", load_if_exists=True)
    for lr in lrs:
        study.enqueue_trial({"optimizer": "adam", "lr": lr, "shuffle": True, "epochs": epochs})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["training_step", "evaluate"])
def test_running_out_of_memory_fails_that_trial_and_the_study_goes_on(
    run_cli, tiny_dataset, monkeypatch, kind, where
):
    make_error, memory = KINDS[kind]
    real = getattr(train_module, where)
    calls = []

    def runs_out_the_first_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise make_error()
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, where, runs_out_the_first_time)
    _queue(1e-3, 1e-3, epochs=1)
    result = run_cli(*fast_study_args(tiny_dataset, *COMMON, "--max-epochs", 1, "--trials", 2))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    failed, finished = trials_of(STORAGE)
    reason = f"{memory} at batch size 128 and 64 px; {ADVICE}"
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[FAIL_REASON_ATTR] == reason
    assert f"trial 0 failed: {reason}" in result.output
    assert finished.state == TrialState.COMPLETE


@pytest.mark.parametrize("kind", KINDS)
def test_fused_trials_that_do_not_fit_go_on_fewer_at_once(
    run_cli, tiny_dataset, monkeypatch, kind
):
    # Trial 1 (lr 0.005) runs out of memory in every epoch it trains in: with trial 0 first,
    # where neither is at fault, then alone, where it is.
    make_error, memory = KINDS[kind]
    train_epoch = FusedTrainer.train_epoch

    def runs_out_with_trial_1(self):
        members = [member for _, member in self._active()]
        with_trial_1 = any(member.config.lr == 5e-3 for member in members)
        # Together in their second epoch (trial 0 goes on from its first, checkpointed), and
        # trial 1 in any epoch alone.
        if with_trial_1 and (len(members) == 1 or len(members[0].state.history) == 1):
            raise make_error()
        return train_epoch(self)

    monkeypatch.setattr(FusedTrainer, "train_epoch", runs_out_with_trial_1)
    _queue(1e-3, 5e-3)
    args = [*COMMON, "--max-epochs", 2, "--trials", 2, "--fuse", 2]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (
        f"{memory} at batch size 128 and 64 px with 2 trials fused: going on with at most 1 at "
        "a time (trials 0, 1 go on from their last finished epoch)"
    ) in result.output
    kept, alone = trials_of(STORAGE)
    assert kept.state == TrialState.COMPLETE
    assert sorted(kept.intermediate_values) == [1, 2]  # its epoch 1 kept, its epoch 2 redone
    assert "resumes" not in result.output  # the same trial went on: nothing queued again
    assert alone.state == TrialState.FAIL
    reason = f"{memory} at batch size 128 and 64 px; {ADVICE}"
    assert alone.user_attrs[FAIL_REASON_ATTR] == reason
    assert f"trial 1 failed: {reason}" in result.output


def test_memory_running_out_as_a_fused_trial_scores_the_test_set_fails_it_only(
    run_cli, tiny_dataset, monkeypatch
):
    # With a validation part, a finished trial's test set is scored once, on the device.
    def test_set_does_not_fit(model, data, precision):
        raise RuntimeError(CPU_REFUSAL)

    monkeypatch.setattr(objective_module, "evaluate", test_set_does_not_fit)
    _queue(1e-3, 5e-3, epochs=1)
    args = [*COMMON, "--max-epochs", 1, "--trials", 2, "--fuse", 2, "--val-fraction", 0.25]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    reason = f"out of memory (2.5 GiB refused) at batch size 128 and 64 px; {ADVICE}"
    for trial in trials_of(STORAGE):
        assert trial.state == TrialState.FAIL
        assert trial.user_attrs[FAIL_REASON_ATTR] == reason


# Runs the command line under an address-space limit (as `ulimit -v` sets): what it has mapped
# once its modules are imported, plus 1.5 GiB. At 1024 px one training step of the tiny set's
# 40 images needs over 2.5 GiB for the first convolution's output alone.
UNDER_A_LIMIT = """
import resource, sys
import study.run.runner, study.cli
with open("/proc/self/status") as status:
    mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
limit = mapped + 3 * 2**29
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv = ["catdog-study", *sys.argv[1:]]
study.cli.main()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("fuse", [1, 2])
def test_a_real_allocator_refusal_fails_the_trials_and_the_run_goes_on(in_tmp, tiny_dataset, fuse):
    # The start-up too: --precision auto chooses without a step that cannot fit.
    args = ["optimize", "--data", tiny_dataset, "--device", "cpu", "--image-size", 1024]
    args += [*COMMON, "--max-epochs", 1, "--trials", 2, "--fuse", fuse]
    # Few threads and malloc arenas, each of which maps address space of its own.
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MALLOC_ARENA_MAX": "2"}
    result = subprocess.run(
        [sys.executable, "-c", UNDER_A_LIMIT, *map(str, args)],
        cwd=in_tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    if fuse == 2:  # together first, then each alone
        assert (
            "refused) at batch size 128 and 1024 px with 2 trials fused: going on with at most 1 "
            "at a time (trials 0, 1 go on from their last finished epoch)"
        ) in output
    trials = trials_of(STORAGE)
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    for trial in trials:
        reason = trial.user_attrs[FAIL_REASON_ATTR]
        assert reason.startswith("out of memory (")
        assert reason.endswith(f"refused) at batch size 128 and 1024 px; {ADVICE}")
        assert f"trial {trial.number} failed: {reason}" in output
