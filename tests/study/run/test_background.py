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


def test_a_failed_job_skips_the_rest_of_its_key_and_its_error_reaches_the_caller():
    background, ran = Background(), []

    def fail():
        raise OSError("disk full")

    background.submit(lambda: ran.append("trial 0, epoch 1"), key=0)
    background.submit(fail, key=0)
    background.submit(lambda: ran.append("trial 1, epoch 1"), key=1)
    background.submit(lambda: ran.append("trial 0, epoch 2"), key=0)  # relies on the failed one
    background.submit(lambda: ran.append("trial 1, epoch 2"), key=1)
    background.drain()  # waiting for what was handed over raises nothing
    background.submit(lambda: ran.append("trial 1, end"), key=1)  # nor does handing over more
    with pytest.raises(OSError, match="disk full"):
        background.wait()
    with pytest.raises(OSError, match="disk full"):
        background.check()
    background.close()
    assert ran == ["trial 0, epoch 1", "trial 1, epoch 1", "trial 1, epoch 2", "trial 1, end"]


def test_settle_waits_for_what_was_handed_over_before_the_mark_only():
    background, ran, release = Background(), [], threading.Event()
    background.submit(lambda: (time.sleep(0.2), ran.append("before")))
    background.mark()
    background.submit(lambda: (release.wait(5), ran.append("after")))
    background.settle()
    assert ran == ["before"]  # the job after the mark still waits for `release`
    release.set()
    background.wait()
    background.close()
    assert ran == ["before", "after"]


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
