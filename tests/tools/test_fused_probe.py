"""tools/fused_probe.py: every step of the GPU probe, checked in its tiny CPU mode."""

import json
import sys


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
