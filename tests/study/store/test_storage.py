"""The study store under several processes at once: each queued trial is taken by one only."""

import multiprocessing

import optuna

from study.store.storage import open_storage

QUEUED = 120
PROCESSES = 4


def _take_queued_trials(url: str, start, taken) -> None:
    """Ask for trials until the queue is empty, finishing each; put their numbers in `taken`."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="queue", storage=open_storage(url))
    start.wait()  # all processes begin at once, so that they collide
    numbers = []
    try:
        while True:
            trial = study.ask()
            if trial.number >= QUEUED:  # not a queued one: the queue is empty
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            numbers.append(trial.number)
            study.tell(trial, 0.0)
    except Exception as error:  # reported, not raised: the test names it
        numbers.append(f"{type(error).__name__}: {error}")
    taken.put(numbers)


def test_processes_never_take_the_same_queued_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(url))
    for i in range(QUEUED):
        study.enqueue_trial({"x": i}, skip_if_exists=False)
    context = multiprocessing.get_context("spawn")
    start, taken = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_take_queued_trials, args=(url, start, taken))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    numbers = [n for _ in workers for n in taken.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
    # Before the fix, two processes could both see a trial WAITING and both run it; the second
    # to finish it then failed with "Cannot tell a COMPLETE trial".
    errors = [n for n in numbers if isinstance(n, str)]
    assert errors == []
    assert sorted(numbers) == list(range(QUEUED))
    assert [w.exitcode for w in workers] == [0] * PROCESSES
