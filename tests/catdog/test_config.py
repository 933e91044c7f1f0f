import re

import pytest

from catdog.config import TrainConfig


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"momentum": 1.0}, "momentum and beta1 must be in [0, 1)"),
        ({"beta1": -0.1}, "momentum and beta1 must be in [0, 1)"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1)"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
        ({"rotation_degrees": 200.0}, "rotation_degrees in [0, 180]"),
        ({"nesterov": True}, "nesterov needs momentum > 0"),
        ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs must be smaller than epochs"),
        ({"min_crop_scale": 0.0}, "min_crop_scale must be in (0, 1]"),
    ],
)
def test_settings_torch_would_refuse_mid_run_are_refused_up_front(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**settings)


def test_the_report_s_recipe_and_the_extended_space_s_corners_are_valid():
    TrainConfig()
    TrainConfig(momentum=0.99, nesterov=True, beta1=0.99, label_smoothing=0.2, weight_decay=0.01)
    TrainConfig(rotation_degrees=20.0, min_crop_scale=0.25, epochs=4, warmup_epochs=3)
