"""--precision auto: chosen by what the processor supports, never by how busy it is."""

from __future__ import annotations

import pytest
import torch

import catdog.device as device_module
from catdog.device import choose_precision

CPU = torch.device("cpu")


def _cpu_with(monkeypatch: pytest.MonkeyPatch, features: frozenset[str] | None) -> None:
    monkeypatch.setattr(device_module, "cpu_features", lambda: features)


@pytest.mark.parametrize(
    ("features", "line"),
    [
        ({"avx2", "avx512_bf16"}, "precision: bf16 (this CPU has AVX512-BF16 instructions)"),
        ({"avx512_bf16", "amx_bf16"}, "precision: bf16 (this CPU has AMX-BF16 instructions)"),
        ({"neon", "bf16"}, "precision: bf16 (this CPU has Arm BF16 instructions)"),
        (
            {"avx2", "avx512f", "avx512_vnni"},
            "precision: fp32 (this CPU has no bf16 instructions: bf16 would be emulated, slower "
            "than fp32)",
        ),
        (None, "precision: fp32 (this CPU's instruction sets could not be read)"),
    ],
)  # fmt: skip
def test_auto_on_a_cpu_follows_its_bf16_instructions(monkeypatch, features, line):
    _cpu_with(monkeypatch, None if features is None else frozenset(features))
    assert str(choose_precision("auto", CPU)) == line


def test_auto_takes_no_timing(monkeypatch):
    # However slow the machine is at this moment, the answer depends on the instructions only.
    def no_clock():
        raise AssertionError("the choice must not time anything")

    monkeypatch.setattr("time.perf_counter", no_clock)
    _cpu_with(monkeypatch, frozenset({"avx512_bf16"}))
    assert [choose_precision("auto", CPU).precision for _ in range(3)] == ["bf16"] * 3


def test_an_explicit_precision_is_kept_and_named(monkeypatch):
    _cpu_with(monkeypatch, frozenset())
    assert str(choose_precision("bf16", CPU)) == "precision: bf16 (--precision bf16)"
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("fp16", CPU)


def test_without_torchs_list_the_kernels_is_read(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n")
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)  # an older torch
    monkeypatch.setattr(device_module, "CPUINFO", cpuinfo)
    assert device_module.cpu_features() == {"fpu", "avx2", "avx512_bf16"}
    assert choose_precision("auto", CPU).precision == "bf16"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd\n")  # an Arm CPU without BF16
    assert choose_precision("auto", CPU).precision == "fp32"
