import pytest
import torch

from catdog.model import CatDogCNN, conv_padding, head_width


def test_report_network_at_256px_is_exact():
    model = CatDogCNN(256)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (3, 16, 4),
        (16, 32, 3),
        (32, 32, 2),
        (32, 64, 2),
        (64, 64, 3),
        (64, 128, 3),
    ]
    assert all(c.bias is None and c.padding == (0, 0) for c in convs)
    assert model.head[1].in_features == 512 and model.head[1].out_features == 2
    # 128 256 conv weights + 672 BatchNorm weights and biases + 1 026 in Linear(512, 2)
    assert sum(p.numel() for p in model.parameters()) == 129_954
    assert model(torch.rand(2, 3, 256, 256)).shape == (2, 2)


@pytest.mark.parametrize(("size", "width"), [(64, 128), (96, 128), (128, 512), (160, 512)])
def test_smaller_sizes_pad_the_convolutions_and_compute_the_head(size, width):
    assert conv_padding(size) == 1
    assert head_width(size) == width
    model = CatDogCNN(size)
    assert model(torch.rand(3, 3, size, size)).shape == (3, 2)


def test_unpadded_network_is_kept_wherever_it_fits():
    assert conv_padding(179) is None and conv_padding(178) == 1
    assert CatDogCNN(200)(torch.rand(2, 3, 200, 200)).shape == (2, 2)


def test_below_64px_is_refused_with_the_limit():
    with pytest.raises(ValueError, match="at least 64 px"):
        CatDogCNN(48)
