"""`--fuse auto`'s choice: how far K doubles, what stops it, and what it keeps; the measuring
itself on the CPU (it is device-agnostic; a CPU run never chooses more than 1)."""

import pytest
import torch

import catdog.fused.measure as measure_module
from catdog.config import TrainConfig
from catdog.fused import FusedTrainer
from catdog.fused.choose import (
    MAX_ELEMENTS,
    FuseChoice,
    WidthFigures,
    choose_width,
    search_width,
    widest,
)
from catdog.fused.measure import EpochRate, fastest_split, random_images, training_rate

CPU = torch.device("cpu")
GIB = 2**30


def _figures(width: int, rate: float, peak_gib: float | None = None) -> WidthFigures:
    peak = None if peak_gib is None else int(peak_gib * GIB)
    split = (width == 8,) + (False,) * 5  # at K=8 block 1 measured faster split
    return WidthFigures(EpochRate(width, rate, 2.0, 0.5, peak), split)


class FakeDevice:
    """Measures from a table: images/s (and peak GiB) by K; an exception is raised instead."""

    def __init__(self, table):
        self.table, self.tried = table, []

    def __call__(self, width: int) -> WidthFigures:
        self.tried.append(width)
        found = self.table[width]
        if isinstance(found, Exception):
            raise found
        return _figures(width, *found)


def test_no_tensor_passes_2_31_elements():
    # Block 1's output at 256 px: 16 channels x 253 x 253 per member and image.
    per_member = 16 * 253 * 253
    assert widest(256, 128) == 16 and widest(256, 256) == 8 and widest(256, 32) == 65
    assert 128 * 16 * per_member <= MAX_ELEMENTS < 128 * 17 * per_member
    device = FakeDevice({k: (1000.0 * k,) for k in (1, 2, 4, 8, 16, 32)})
    width, reason, _ = search_width(device, (1, 2, 4, 8, 16, 32), widest=widest(256, 256))
    assert device.tried == [1, 2, 4, 8]  # K=16 at batch 256 is never built
    assert width == 8
    assert reason == (
        "K=16 not tried: a block-1 activation would pass 2^31 elements "
        "(at most K=8 at this batch size and image size); kept K=8"
    )


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB\nmore text"),
        RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"),
    ],
    ids=["out of memory", "any other error"],
)
def test_an_error_keeps_the_best_width_measured_and_says_why(error):
    device = FakeDevice({1: (100.0,), 2: (190.0,), 4: (300.0,), 8: error})
    width, reason, measured = search_width(device, (1, 2, 4, 8, 16, 32), widest=16)
    assert width == 4 and device.tried == [1, 2, 4, 8]
    first_line = str(error).splitlines()[0]
    assert reason == f"K=8 failed ({first_line}); kept K=4"
    assert [f.width for f in measured] == [1, 2, 4]
    device = FakeDevice({1: error})
    width, reason, _ = search_width(device, (1, 2), widest=16)
    assert (width, reason) == (1, f"K=1 failed ({first_line}); kept K=1")


def test_doubling_stops_where_the_gain_falls_below_15_percent():
    device = FakeDevice({1: (100.0,), 2: (190.0,), 4: (210.0,), 8: (400.0,)})
    width, reason, _ = search_width(device, (1, 2, 4, 8), widest=16)
    assert width == 2 and device.tried == [1, 2, 4]
    assert reason == "K=4 gained +11% over K=2 (less than 15%); kept K=2"


def test_a_width_that_would_not_fit_in_memory_is_not_tried():
    # Peaks double with K; 20 GiB may be used: K=8 would need about 24 GiB.
    device = FakeDevice({1: (100.0, 3.0), 2: (190.0, 6.0), 4: (360.0, 12.0), 8: (700.0, 24.0)})
    width, reason, _ = search_width(device, (1, 2, 4, 8), widest=16, memory_bytes=20 * GIB)
    assert width == 4 and device.tried == [1, 2, 4]
    assert reason == (
        "K=8 not tried: about 24.0 GiB predicted, more than the 20.0 GiB training may use; "
        "kept K=4"
    )
    # One whose measured peak turns out above it is not kept either.
    device = FakeDevice({1: (100.0, 3.0), 2: (190.0, 7.0), 4: (360.0, 21.0)})
    width, reason, _ = search_width(device, (1, 2, 4), widest=16, memory_bytes=20 * GIB)
    assert width == 2
    assert reason == "K=4 held 21.0 GiB, more than the 20.0 GiB training may use; kept K=2"


def test_the_choice_carries_every_figure_for_the_study():
    device = FakeDevice({1: (12480.0, 3.0), 2: (23100.4, 6.0), 4: (24000.0, 12.0)})
    width, reason, measured = search_width(device, (1, 2, 4, 8), widest=16)
    choice = FuseChoice(width, reason, tuple(measured), "FakeGPU, batch 128, 256 px, bf16")
    assert choice.to_dict() == {
        "chosen": 2,
        "why": "K=4 gained +4% over K=2 (less than 15%); kept K=2",
        "measured_on": "FakeGPU, batch 128, 256 px, bf16",
        "images_per_second": {"1": 12480, "2": 23100, "4": 24000},
        "autotune_s": {"1": 1.5, "2": 1.5, "4": 1.5},
        "peak_gib": {"1": 3.0, "2": 6.0, "4": 12.0},
        "split_blocks": {"1": [], "2": [], "4": []},
    }
    assert choice.rates_line() == (
        "aggregate training K=1 12 480, K=2 23 100, K=4 24 000 images/s "
        "(autotuning 1.5, 1.5, 1.5 s)"
    )
    assert choice.split_layers == {1: (False,) * 6, 2: (False,) * 6, 4: (False,) * 6}
    split = FuseChoice(8, "", (_figures(8, 1.0),), "")
    assert split.rates_line().endswith("; split convolutions faster at K=8 blocks 1")


def test_a_cpu_is_not_measured():
    choice = choose_width(CPU, 64, 16, "fp32")
    assert choice.width == 1 and not choice.measured
    assert choice.reason == "not measured on a CPU, where fusing gained nothing (2-core VM)"


def test_the_measurements_run_on_any_device(monkeypatch):
    monkeypatch.setattr(measure_module, "CONVOLUTION_REPEATS", 1)
    images = random_images(CPU, 64, 8)
    rate = training_rate(images, 2, 4, "fp32", split_layers={2: (False,) * 6})
    assert rate.width == 2 and rate.images_per_second > 0 and rate.peak_bytes is None
    assert rate.images_per_second == pytest.approx(2 * 8 / rate.epoch_s)
    split, seconds = fastest_split(2, image_size=64, batch_size=4, precision="bf16", device=CPU)
    assert len(split) == len(seconds) == 6
    assert all(s["grouped"] > 0 and s["split"] > 0 for s in seconds)


def test_the_trainer_lays_each_width_out_as_measured(splits):
    # Measured: at K=2 block 1 split and the rest grouped; K=4 all grouped. Width 3 (no
    # entry) takes K=2's; width 1 (no entry below) the device's default (split on a CPU).
    layout = {2: (True,) + (False,) * 5, 4: (False,) * 6}
    trainer = FusedTrainer(*splits, slots=4, batch_size=16, split_layers=layout)
    for slot in range(3):
        trainer.start(slot, TrainConfig(batch_size=16), seed=slot)
    seen = []
    for slot in range(3):  # 3 members, then 2, then 1, as trials end
        seen.append([conv.split for conv in trainer._layout().features[::4]])
        trainer.stop(slot)
    assert trainer.widths == [3, 2, 1]
    assert seen == [[True] + [False] * 5, [True] + [False] * 5, [True] * 6]
