import torch

from catdog.augment import (
    Augmentation,
    AugmentPlan,
    affine_grid,
    augment,
    augment_members,
    to_float,
)


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


def _white(batch=64, size=32):
    return torch.full((batch, 3, size, size), 255, dtype=torch.uint8)


def _black_fraction(out: torch.Tensor) -> torch.Tensor:
    """(B,) fraction of each image's pixels filled with zeros from outside the picture."""
    return (out[:, 0] < 0.5).float().mean(dim=(1, 2))


def test_rotation_up_to_the_configured_angle_leaves_black_corners():
    generator = torch.Generator().manual_seed(0)
    small = _black_fraction(augment(_white(), Augmentation(2.0, False, 1.0), generator))
    large = _black_fraction(augment(_white(), Augmentation(20.0, False, 1.0), generator))
    # Rotating a square by a degrees uncovers about tan(a) / 2 of it in corner triangles;
    # 20 degrees: at most 18 %, and the per-image angles spread over (-20, 20).
    assert small.max() < 0.03
    assert 0.05 < large.max() < 0.2
    assert large.min() < 0.03


def test_crop_zooms_into_a_part_of_at_least_the_minimum_area():
    # Channel 0 holds each pixel's x position, channel 1 its y position, both 0..255: the
    # spread of positions an output image shows is the fraction of the width and height cropped.
    size = 64
    ramp = torch.linspace(0, 255, size).round().to(torch.uint8)
    images = torch.zeros((64, 3, size, size), dtype=torch.uint8)
    images[:, 0] = ramp.expand(size, size)
    images[:, 1] = ramp[:, None].expand(size, size)
    out = augment(images, Augmentation(0.0, False, 0.25), torch.Generator().manual_seed(2))
    width = out[:, 0].amax(dim=(1, 2)) - out[:, 0].amin(dim=(1, 2))
    height = out[:, 1].amax(dim=(1, 2)) - out[:, 1].amin(dim=(1, 2))
    area = width * height
    assert (area > 0.25 * 0.9).all()  # never below the minimum scale (minus edge pixels)
    assert (area < 0.6).sum() > 10  # and most crops really zoom in
    assert width.max() <= 1.0 and (width - height).abs().max() > 0.1  # aspect ratio varies
    # A crop stays inside the picture: no black border like rotation's.
    cropped = augment(_white(), Augmentation(0.0, False, 0.25), torch.Generator().manual_seed(4))
    assert _black_fraction(cropped).max() == 0


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


def test_members_augmented_together_get_exactly_their_own_augmentation():
    # Fused training warps K members' batches at once, each drawing from its own generator:
    # member k's images must come out as augment() makes them alone, draws and all.
    settings = [
        Augmentation(),  # the report's: nearest sampling
        Augmentation(0.0, False, 1.0),  # none: no draws, an exact identity warp
        Augmentation(10.0, True, 0.3),  # a crop: bilinear
        Augmentation(20.0, False, 1.0),
        Augmentation(5.0, True, 0.6),
    ]
    batch = 6
    images = _images(batch=batch * len(settings))
    plan = AugmentPlan.build(settings, images.device)
    generators = [torch.Generator().manual_seed(k) for k in range(len(settings))]
    together = augment_members(images, plan, generators)
    for k, setting in enumerate(settings):
        alone_generator = torch.Generator().manual_seed(k)
        alone = augment(images[k * batch : (k + 1) * batch], setting, alone_generator)
        assert torch.equal(together[k * batch : (k + 1) * batch], alone), setting
        assert torch.equal(generators[k].get_state(), alone_generator.get_state())
