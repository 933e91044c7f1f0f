"""Tabular benchmark of the study's search settings: record learning curves once, replay studies.

record.py trains a grid of configurations to the last epoch and saves every epoch's figures;
replay.py runs Optuna studies (the product's space, sampler, queueing) against a recording.
"""
