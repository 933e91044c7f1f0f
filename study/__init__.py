"""The Optuna side: search space, objective, storage and the `catdog-study` command line."""
