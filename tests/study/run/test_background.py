"""The thread that does a fused run's bookkeeping beside its training loop."""

import threading
import time

import pytest
import torch

from study.run.background import Background


def test_jobs_run_in_the_order_given_on_one_thread_beside_the_caller():
    background, ran = Background(), []
    for i in range(20):
        background.submit(lambda i=i: ran.append((i, threading.current_thread().name)))
    background.wait()
    background.close()
    assert [i for i, _ in ran] == list(range(20))
    names = {name for _, name in ran}
    assert len(names) == 1 and names != {threading.current_thread().name}


def test_a_failed_job_skips_the_rest_and_its_error_reaches_the_caller():
    background, ran = Background(), []

    def fail():
        raise OSError("disk full")

    background.submit(lambda: ran.append(1))
    background.submit(fail)
    background.submit(lambda: ran.append(3))  # relies on the failed one: skipped
    with pytest.raises(OSError, match="disk full"):
        background.wait()
    with pytest.raises(OSError, match="disk full"):
        background.submit(lambda: ran.append(4))  # refused: the run must handle the error
    background.drain()  # waiting for what was handed over raises nothing
    background.close()
    assert ran == [1]


def test_a_job_submitted_once_under_a_key_is_not_queued_twice():
    background, ran, started = Background(), [], threading.Event()

    def slow():
        started.set()
        time.sleep(0.2)

    background.submit(slow)
    started.wait()
    for _ in range(5):  # while `slow` runs: one rewrite does for all five
        background.submit_once("note", lambda: ran.append("note"))
    background.wait()
    background.submit_once("note", lambda: ran.append("note"))  # nothing waiting: queued
    background.wait()
    background.close()
    assert ran == ["note", "note"]


def test_at_once_runs_each_job_in_the_callers_thread_and_raises_at_once():
    background, ran = Background(thread=False), []
    background.submit(lambda: ran.append(threading.current_thread()))
    assert ran == [threading.current_thread()]
    with pytest.raises(ValueError, match="bad"):
        background.submit(lambda: (_ for _ in ()).throw(ValueError("bad")))


def test_a_thread_only_where_a_gpu_trains():
    assert Background.for_device(torch.device("cpu"))._pool is None
    gpu = Background.for_device(torch.device("cuda", 0))  # no GPU needed to make one
    assert gpu._pool is not None
    gpu.close()
