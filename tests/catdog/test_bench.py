import json
import math
import statistics

import pytest
import torch

from catdog.bench import run_bench
from catdog.bench_result import PIPELINES, BenchSettings, format_result

CPU = torch.device("cpu")


def test_bench_times_all_three_kinds_on_the_same_images(tiny_dataset, tmp_path):
    settings = BenchSettings(image_size=64, batches=1, repeats=2, precision="fp32")
    lines = []
    result = run_bench(tiny_dataset, "tiny", CPU, settings, cache_dir=tmp_path, echo=lines.append)
    figures = json.loads(json.dumps(result.to_dict()))  # what --json writes
    assert figures["settings"]["precision"] == "fp32" and figures["device"] == "cpu"
    # 40 training images fit in one batch of 128; the 16 test images in one evaluation pass.
    assert figures["train"]["images"] == 40 and figures["eval"]["images"] == 16
    for phase in ("train", "eval"):
        speeds = figures[phase]["images_per_second"]
        assert sorted(speeds) == sorted(PIPELINES)
        assert all(speed > 0 for speed in speeds.values())
        each_repeat = figures[phase]["images_per_second_each_repeat"].values()
        assert all(len(runs) == 2 for runs in each_repeat)
        for ratio in ("project_over_classic", "project_over_bare"):
            assert math.isfinite(figures[phase][ratio]) and figures[phase][ratio] > 0
    assert len([line for line in lines if line.startswith("repeat")]) == 2
    table = format_result(result)
    assert "project/classic" in table and "project/bare" in table


def test_bench_times_fused_members_next_to_one_trial(tiny_dataset, tmp_path):
    settings = BenchSettings(image_size=64, batches=1, repeats=2, precision="fp32", fuse=2)
    lines = []
    result = run_bench(tiny_dataset, "tiny", CPU, settings, cache_dir=tmp_path, echo=lines.append)
    figures = json.loads(json.dumps(result.to_dict()))
    assert figures["settings"]["fuse"] == 2
    for phase in ("train", "eval"):
        values = figures[phase]
        assert values["fused_members"] == 2
        assert sorted(values["images_per_second"]) == sorted((*PIPELINES, "fused"))
        # The fused figure is the aggregate: 2 members x the images of a pass, per second.
        seconds = result.to_dict()[phase]
        each = values["images_per_second_each_repeat"]["fused"]
        assert len(each) == 2 and all(speed > 0 for speed in each)
        for ratio in ("fused_over_bare", "fused_over_project"):
            assert math.isfinite(values[ratio]) and values[ratio] > 0
            assert ratio in values["fastest_repeat"]
        assert seconds["images"] == figures[phase]["images"]
    phase = result.train
    fused = phase.images_per_second("fused")
    assert fused == pytest.approx(2 * phase.images / statistics.median(phase.seconds["fused"]))
    table = format_result(result)
    assert "fused/bare" in table and "fused/project" in table and "2 members" in table
    assert "fused" in lines[-1]
