"""Where a study is kept: the Optuna storage (storage.py) and its lock (locks.py), the artifact
store (artifacts.py), reading studies and trials back (studies.py), per-epoch resume checkpoints
(resume.py), and a trial's model written out (export.py)."""
