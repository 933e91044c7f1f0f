"""tools/fused_probe.py: every step of the GPU probe, checked in its tiny CPU mode."""

import json
import sys

import pytest


def test_the_tiny_probe_runs_every_step_and_writes_three_files(tool, tmp_path, monkeypatch):
    probe = tool("fused_probe")
    out = tmp_path / "out"
    argv = ["fused_probe.py", "--device", "cpu", "--tiny", "--out", str(out), "--budget", "600"]
    monkeypatch.setattr(sys, "argv", argv)
    probe.main()
    assert sorted(p.name for p in out.iterdir()) == [
        "compile.log",
        "fused_probe.json",
        "kernels.txt",
    ]
    report = json.loads((out / "fused_probe.json").read_text())
    assert set(report["alone"]) == {"relu_after_pool", "relu_before_pool"}
    two = report["widths"]["2"]
    assert set(two["training"]) == {"grouped", "split", "fastest", "fastest_relu_before_pool"}
    assert len(two["convolution_ms"]) == 6 and "error" not in two
    assert set(report["summary"]["by_K"]) == {"1", "2"}
    # A NaN in member 0 leaves member 1 exactly as it trains without it.
    nan = report["nan"]
    assert nan["width"] == 2 and nan["untouched"] and nan["others_losses_equal"]
    assert set(report["kernels"]) == {"1", "2"} and report["kernels"]["2"][0]["calls"] > 0
    assert "K=2, sorted by self_cpu_time_total" in (out / "kernels.txt").read_text()
    compiled = report["compile"]
    assert compiled["exit_status"] == 0 and compiled["compiled_images_per_second"] > 0


def test_a_gpu_that_is_not_there_or_a_budget_below_zero_is_one_line(
    tool, tmp_path, monkeypatch, capsys
):
    probe = tool("fused_probe")
    monkeypatch.setattr(probe.torch.cuda, "is_available", lambda: False)
    for args, message in (
        (["--device", "cuda"], "this machine has no usable CUDA GPU"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--budget", "-1"], "-1 is not a number of seconds above 0"),
    ):
        argv = ["fused_probe.py", "--tiny", "--out", str(tmp_path / "out"), *args]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            probe.main()
        assert exited.value.code == 2
        error = capsys.readouterr().err.splitlines()[-1]
        assert error.startswith("fused_probe.py: error: ") and message in error, error
    assert not (tmp_path / "out").exists()
