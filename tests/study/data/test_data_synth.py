from PIL import Image

from catdog.synthetic import read_manifest


def test_synth_writes_the_set_it_says_it_wrote(run_cli, tmp_path):
    out = tmp_path / "photos"
    result = run_cli(
        "data", "synth", "--out", out, "--train-per-class", 3, "--test-per-class", 2,
        "--seed", 5, "--photo-sized",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 6 training and 4 test images" in result.output
    assert "SYNTHETIC" in result.output and "photo-sized" in result.output
    spec = read_manifest(out)
    assert (spec.seed, spec.train_per_class, spec.photo_sized) == (5, 3, True)
    jpegs = sorted(out.rglob("*.jpg"))
    assert len(jpegs) == 10
    for path in jpegs:
        with Image.open(path) as image:
            assert max(image.size) >= 300
