import json

import pytest
import torch


def test_bench_prints_the_ratios_and_writes_them_as_json(run_cli, tiny_dataset, in_tmp):
    result = run_cli(
        "bench",
        "--data",
        tiny_dataset,
        "--image-size",
        64,
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--batches",
        1,
        "--repeats",
        1,
        "--fuse",
        2,
        "--json",
        "figures/bench.json",
    )
    assert result.exit_code == 0, result.output
    assert "project/classic" in result.output and "project/bare" in result.output
    assert "fused/bare" in result.output
    figures = json.loads((in_tmp / "figures" / "bench.json").read_text())
    assert figures["settings"]["image_size"] == 64 and figures["device"] == "cpu"
    assert "SYNTHETIC" in figures["data"]  # a figure from synthetic data says so
    for phase in ("train", "eval"):
        assert set(figures[phase]) >= {
            "images",
            "images_per_second",
            "project_over_classic",
            "project_over_bare",
        }
        speeds = figures[phase]["images_per_second"]
        assert set(speeds) == {"classic", "project", "bare", "fused"}
        assert figures[phase]["fused_members"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_bench_on_an_absent_gpu_is_a_one_line_error(run_cli, tiny_dataset):
    result = run_cli("bench", "--data", tiny_dataset, "--device", "cuda")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
