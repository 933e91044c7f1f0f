import torch

from catdog.augment import Augmentation, affine_grid, augment, to_float


def _images(batch=8, size=32):
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)


def test_identity_augmentation_is_just_scaling():
    images = _images()
    out = augment(images, Augmentation(0.0, False, 1.0), torch.Generator().manual_seed(1))
    assert torch.equal(out, images.float() / 255)


def test_flip_only_mirrors_each_image_or_leaves_it():
    images = _images(batch=32)
    out = augment(images, Augmentation(0.0, True, 1.0), torch.Generator().manual_seed(1))
    pixels = to_float(images)
    flipped = [torch.allclose(o, p.flip(-1), atol=1e-5) for o, p in zip(out, pixels, strict=True)]
    kept = [torch.allclose(o, p, atol=1e-5) for o, p in zip(out, pixels, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 4 < sum(flipped) < 28  # a fair coin per image


def test_report_rotation_is_small_but_real_and_seeded():
    images = _images()
    report = Augmentation()  # 2 degrees and a flip
    first = augment(images, report, torch.Generator().manual_seed(3))
    again = augment(images, report, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert first.shape == (8, 3, 32, 32) and first.dtype == torch.float32
    assert first.min() >= 0.0 and first.max() <= 1.0


def test_affine_grid_matches_torch():
    theta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.affine_grid(theta, [5, 3, 24, 40], align_corners=False)
    assert torch.allclose(affine_grid(theta, 24, 40), expected, atol=1e-6)


def test_rotation_samples_whole_pixels_as_torchvision_does():
    # RandomRotation's default interpolation is nearest: every output value is an input value
    # (or the black fill), never a blend of neighbours.
    images = _images(batch=4, size=32)
    out = augment(images, Augmentation(2.0, True, 1.0), torch.Generator().manual_seed(2))
    levels = set((images.float() / 255).unique().tolist()) | {0.0}
    assert set(out.unique().tolist()) <= levels
