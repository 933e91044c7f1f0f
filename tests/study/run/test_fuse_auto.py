"""`optimize --fuse auto`: why it chose its K is printed and stored on the study, and the run
trains that K with the convolution layout it measured. The measuring itself needs a GPU; here a
fake device's figures stand in for it (tests/catdog/test_fused_choose.py checks the search)."""

import optuna
import pytest

import study.run.setup as run_setup
from catdog.fused import FusedCNN
from catdog.fused.choose import FuseChoice, WidthFigures
from catdog.fused.measure import EpochRate
from study.attrs import STUDY_FUSE_ATTR

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"
GIB = 2**30
BLOCK_1_SPLIT = (True,) + (False,) * 5
MEASURED = FuseChoice(
    2,
    "K=4 failed (CUDA out of memory. Tried to allocate 4.00 GiB); kept K=2",
    (
        WidthFigures(EpochRate(1, 12480.0, 3.1, 0.2, 3 * GIB), (False,) * 6),
        WidthFigures(EpochRate(2, 23100.0, 2.2, 0.3, 6 * GIB), BLOCK_1_SPLIT),
    ),
    "FakeGPU, batch 128, 64 px, fp32",
)


@pytest.fixture
def fake_gpu(monkeypatch):
    """choose_width answers MEASURED and records what it was asked; FusedCNN.from_members
    records the layouts it builds."""
    seen = {"asked": [], "layouts": []}

    def choose_width(device, image_size, batch_size, precision, **options):
        seen["asked"].append((image_size, batch_size, precision, options))
        return MEASURED

    build = FusedCNN.from_members.__func__

    def from_members(cls, members, image_size, **options):
        seen["layouts"].append((len(members), options.get("split_convolutions")))
        return build(cls, members, image_size, **options)

    monkeypatch.setattr(run_setup, "choose_width", choose_width)
    monkeypatch.setattr(FusedCNN, "from_members", classmethod(from_members))
    return seen


def _optimize(run_cli, tiny_dataset, *extra):
    args = ["--storage", STORAGE, "--trials", 2, "--max-epochs", 1, "--no-seed-configs", *extra]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_fuse_auto_says_why_and_trains_what_it_measured(run_cli, tiny_dataset, fake_gpu):
    lines = _optimize(run_cli, tiny_dataset, "--fuse", "auto", "-v")
    assert (
        "--fuse auto measured on FakeGPU, batch 128, 64 px, fp32: aggregate training "
        "K=1 12 480, K=2 23 100 images/s (autotuning 2.9, 1.9 s); split convolutions faster "
        "at K=2 blocks 1"
    ) in lines
    assert (
        "training up to 2 trials at once as one fused network (--fuse auto: K=4 failed (CUDA "
        "out of memory. Tried to allocate 4.00 GiB); kept K=2)"
    ) in lines
    # Measured at the study's batch size, image size and precision, for the images it holds.
    (asked,) = fake_gpu["asked"]
    assert asked == (64, 128, "fp32", {"most": 2, "data_bytes": (40 + 16) * 3 * 64 * 64})
    assert (2, BLOCK_1_SPLIT) in fake_gpu["layouts"]  # the two trials, block 1 split
    stored = optuna.load_study(study_name="catdog", storage=STORAGE).user_attrs[STUDY_FUSE_ATTR]
    assert stored == MEASURED.to_dict()
    assert stored["images_per_second"] == {"1": 12480, "2": 23100}
    assert stored["why"] == MEASURED.reason


def test_without_verbose_only_the_choice_is_told(run_cli, tiny_dataset, fake_gpu):
    lines = _optimize(run_cli, tiny_dataset, "--fuse", "auto")
    assert not [line for line in lines if "measured on" in line]
    assert [line for line in lines if "fused network" in line] == [
        "training up to 2 trials at once as one fused network (--fuse auto: K=4 failed (CUDA "
        "out of memory. Tried to allocate 4.00 GiB); kept K=2)"
    ]


def test_a_given_fuse_is_stored_as_given(run_cli, tiny_dataset, fake_gpu):
    _optimize(run_cli, tiny_dataset, "--fuse", "1")
    assert not fake_gpu["asked"]
    stored = optuna.load_study(study_name="catdog", storage=STORAGE).user_attrs[STUDY_FUSE_ATTR]
    assert stored["chosen"] == 1 and stored["why"] == "--fuse 1"
