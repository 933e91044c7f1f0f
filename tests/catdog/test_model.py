import pytest
import torch
import torch.nn.functional as F
from torch import nn

from catdog.model import CatDogCNN, conv_blocks, conv_padding, head_width
from catdog.modelfile import load_model_file, save_model_file


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


def test_n_classes_get_an_n_way_head_and_two_keep_the_reports_initial_weights():
    torch.manual_seed(5)
    two = CatDogCNN(256, num_classes=2)
    torch.manual_seed(5)
    report = ReportCNN(256)  # the report's network, built as before other classes existed
    assert two.state_dict().keys() == report.state_dict().keys()
    for name, tensor in report.state_dict().items():
        assert torch.equal(two.state_dict()[name], tensor), name  # the same draws, in order
    torch.manual_seed(5)
    three = CatDogCNN(256, num_classes=3)
    assert three.head[1].out_features == 3
    assert sum(p.numel() for p in three.parameters()) == 129_954 + 513  # one more row of 512 + 1
    for name, tensor in two.features.state_dict().items():  # drawn before the head
        assert torch.equal(three.features.state_dict()[name], tensor), name
    assert three(torch.rand(2, 3, 256, 256)).shape == (2, 3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        CatDogCNN(64, num_classes=1)


def test_below_64px_is_refused_with_the_limit():
    with pytest.raises(ValueError, match="at least 64 px"):
        CatDogCNN(48)


class ReportCNN(nn.Module):
    """The report's block order, as this project built it before: Conv -> BN -> ReLU -> pool."""

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size
        layers: list[nn.Module] = []
        for in_channels, out_channels, kernel, padding in conv_blocks(image_size):
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(head_width(image_size), 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def _train_steps(model: nn.Module, images, labels, precision: str) -> list[torch.Tensor]:
    """Two SGD steps in training mode; the logits of each."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    seen = []
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(images)
        optimizer.zero_grad()
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
        seen.append(logits.detach())
    return seen


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("size", [64, 200])  # padded and the report's unpadded convolutions
def test_relu_after_the_pool_is_exactly_the_reports_block(size, precision, tmp_path):
    model = CatDogCNN(size).to(memory_format=torch.channels_last)
    assert [type(m) for m in model.features[:4]] == [
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.MaxPool2d,
        nn.ReLU,
    ]
    report = ReportCNN(size).to(memory_format=torch.channels_last)
    report.load_state_dict(model.state_dict())  # the same keys: strict loading
    generator = torch.Generator().manual_seed(size)
    images = torch.randn(6, 3, size, size, generator=generator) * 2  # many negatives too
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (6,), generator=generator)
    for ours, theirs in zip(
        _train_steps(model, images, labels, precision),
        _train_steps(report, images, labels, precision),
        strict=True,
    ):
        assert torch.equal(ours, theirs)  # bitwise: logits
    ours, theirs = model.state_dict(), report.state_dict()
    for name in theirs:  # weights after two steps (so the gradients), BatchNorm statistics
        assert torch.equal(ours[name], theirs[name]), name
    # A model file written by the report's order (as before this change) loads unchanged.
    save_model_file(tmp_path / "old.safetensors", report.eval())
    loaded = load_model_file(tmp_path / "old.safetensors").model
    assert isinstance(loaded.features[3], nn.ReLU)
    assert torch.equal(loaded(images), report(images))
