"""Shared fixtures: small data sets written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from catdog.synthetic import SyntheticSpec, write_synthetic_dataset

TINY = SyntheticSpec(seed=1, train_per_class=20, test_per_class=8, label_noise=0.0)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 + 16 image synthetic set, written once per test session; do not modify it."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "tiny", TINY)


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48 + 18 image synthetic set of three classes, ellipses/, polygons/ and stars/, as a
    user's own photos; written once per test session, do not modify it."""
    # 48 training images are whole batches of 16 for the fused tests (fused CPU training rounds
    # a last batch of 10 differently, two classes as well).
    spec = SyntheticSpec(seed=1, train_per_class=16, test_per_class=6, label_noise=0, classes=3)
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "shapes", spec)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so storage/ and its caches land in the test's own tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
