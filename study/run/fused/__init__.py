"""`--fuse K`: a worker trains up to K trials at once, as one fused network (catdog.fused).

Each trial keeps everything a trial trained alone has, at the same moments: its user attrs,
curves, trial.report and pruning after every epoch, resume checkpoint, model artifact and notes,
and a user attr naming its process and slot.

- loop.py: the run loop: trials asked as slots free up, an epoch of each fused network, the
  trials that ended handed on to be told.
- members.py: each running trial (a member) and how it ends: told COMPLETE, PRUNED or FAIL, or
  stopped with every other member when the run stops.
- narrow.py: memory that ran out in a fused epoch: the run goes on with half as many at once.
"""

from study.run.fused.loop import run_fused_trials

__all__ = ["run_fused_trials"]
