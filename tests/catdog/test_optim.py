import math

import pytest
import torch

from catdog.config import TrainConfig
from catdog.optim import build_optimizer, build_schedule

CPU = torch.device("cpu")
STEPS_PER_EPOCH = 10


def _lr_per_step(**settings) -> list[float]:
    """The learning rate each training step runs with, for a whole run of `settings`."""
    config = TrainConfig(lr=0.1, **settings)
    optimizer = build_optimizer(config, [torch.nn.Parameter(torch.zeros(3))], CPU)
    schedule = build_schedule(config, optimizer, STEPS_PER_EPOCH)
    rates = []
    for _ in range(config.epochs * STEPS_PER_EPOCH):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_constant_schedule_is_the_report_s_fixed_learning_rate():
    assert _lr_per_step(epochs=3) == [pytest.approx(0.1)] * 30


def test_warm_up_rises_linearly_to_the_peak_then_holds():
    rates = _lr_per_step(epochs=4, warmup_epochs=2)
    warmup = rates[: 2 * STEPS_PER_EPOCH]
    assert warmup == pytest.approx([0.1 * (step + 1) / 20 for step in range(20)])
    assert rates[20:] == [pytest.approx(0.1)] * 20


def test_cosine_falls_from_the_peak_towards_zero():
    rates = _lr_per_step(epochs=5, lr_schedule="cosine")
    assert rates[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))  # strictly falling
    assert rates[25] == pytest.approx(0.05)  # half-way: half the peak
    assert rates[-1] < 0.001


def test_cosine_after_warm_up_starts_its_fall_at_the_peak():
    rates = _lr_per_step(epochs=4, lr_schedule="cosine", warmup_epochs=1)
    assert rates[:10] == pytest.approx([0.01 * (step + 1) for step in range(10)])
    assert max(rates) == pytest.approx(0.1) and rates.index(max(rates)) in (9, 10)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] < 0.001


def test_one_cycle_rises_for_30_percent_then_falls_to_a_ten_thousandth():
    rates = _lr_per_step(epochs=10, lr_schedule="one-cycle")
    peak = rates.index(max(rates))
    assert peak == 29  # 30 % of 100 steps of warm-up
    assert rates[0] == pytest.approx(0.1 / 30)
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1], strict=True))
    assert all(a > b for a, b in zip(rates[peak + 1 :], rates[peak + 2 :], strict=False))
    assert 1e-5 <= rates[-1] < 1e-3  # ends near the floor of peak / 10 000, never at 0


def test_one_cycle_with_warm_up_uses_the_given_warm_up():
    rates = _lr_per_step(epochs=5, lr_schedule="one-cycle", warmup_epochs=1)
    assert rates.index(max(rates)) == 9


def test_sgd_gets_momentum_nesterov_and_weight_decay():
    config = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    optimizer = build_optimizer(config, [torch.nn.Parameter(torch.zeros(2))], CPU)
    group = optimizer.param_groups[0]
    assert type(optimizer) is torch.optim.SGD
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.05, 0.9, True)
    assert group["weight_decay"] == 1e-4


def test_the_report_s_sgd_is_plain():
    weights = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = build_optimizer(TrainConfig(optimizer="sgd"), weights, CPU)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.0, False, 0.0)


@pytest.mark.parametrize(
    ("name", "kind"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_adam_and_adamw_get_beta1_and_weight_decay(name, kind):
    config = TrainConfig(optimizer=name, lr=3e-4, beta1=0.8, weight_decay=0.01)
    optimizer = build_optimizer(config, [torch.nn.Parameter(torch.zeros(2))], CPU)
    group = optimizer.param_groups[0]
    assert type(optimizer) is kind
    assert group["betas"] == (0.8, 0.999) and group["weight_decay"] == 0.01


def test_adamw_decays_weights_apart_from_the_gradient_and_adam_does_not():
    # With a zero gradient, AdamW still shrinks each weight by lr * weight_decay of itself;
    # Adam's L2 term goes through the adaptive normalisation and moves by about lr instead.
    moved = {}
    for name in ("adam", "adamw"):
        weight = torch.nn.Parameter(torch.full((4,), 2.0))
        config = TrainConfig(optimizer=name, lr=0.01, weight_decay=0.1)
        optimizer = build_optimizer(config, [weight], CPU)
        weight.grad = torch.zeros_like(weight)
        optimizer.step()
        moved[name] = 2.0 - weight.detach()[0].item()
    assert moved["adamw"] == pytest.approx(0.01 * 0.1 * 2.0, rel=1e-4)  # float32
    assert moved["adam"] == pytest.approx(0.01, rel=1e-3)
    assert not math.isclose(moved["adam"], moved["adamw"])
