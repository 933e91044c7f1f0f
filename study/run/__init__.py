"""One `optimize` run, top to bottom: runner.py sets up once (setup.py: options resolved, study
opened or continued by study.py, trials queued by queue.py) into a picklable plan (plan.py), then
runs workers (worker.py), each training trials through the objective (objective.py), several at
once with --fuse (fused/), and printing progress (progress.py)."""
