"""`catdog-study show MODEL`: what the model learned from, its size and its scores."""

import json

from catdog.modelfile import checksum_path, read_model_info

from ..helpers import one_error_line


def test_show_says_what_the_model_learned_from_its_size_and_accuracy(run_cli, make_model):
    model = make_model().name  # run_cli runs in the same folder
    result = run_cli("show", model)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC shapes from storage/data/synthetic, 64 px (not cats and dogs)" in (
        result.stdout
    )
    assert "image size  64 px: every image is squashed" in result.stdout
    assert "test set    accuracy 97.5 %, loss 0.0712 (it also ranked the trials)" in result.stdout
    assert "trained     trial 7 of study 'catdog', 12 epochs, seed 7, fp32" in result.stdout
    assert "config      adam lr=0.00296 shuffle=on epochs=12" in result.stdout
    assert "classes     cat, dog" in result.stdout
    assert f"check       matches {checksum_path(model)}" in result.stdout


def test_show_json_is_the_whole_header_and_the_checks(run_cli, make_model):
    model = make_model(data="images from photos, 64 px").name
    result = run_cli("show", "--json", model)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["catdog"] == read_model_info(model)
    assert shown["synthetic"] is False and shown["sha256_matches"] is True
    assert shown["catdog"]["metrics"]["test_accuracy"] == 0.975


def test_show_without_a_recorded_checksum_says_it_did_not_check(run_cli, make_model):
    model = make_model().name
    checksum_path(model).unlink()
    result = run_cli("show", model)
    assert result.exit_code == 0, result.output
    assert f"check       not checked: there is no {checksum_path(model)}" in result.stdout


def test_show_describes_a_changed_file_then_fails(run_cli, make_model):
    model = make_model().name
    checksum_path(model).write_text(f"{'0' * 64}  {model}\n")
    result = run_cli("show", model)
    assert "test set    accuracy 97.5 %" in result.stdout
    assert f"does NOT match {checksum_path(model)}" in result.stdout
    assert "SHA-256 does not match the one in" in one_error_line(result)


def test_show_refuses_a_file_that_is_not_a_model(run_cli, tmp_path):
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"not a model")
    assert "not a readable safetensors model file" in one_error_line(run_cli("show", fake))
    assert "no such model file" in one_error_line(run_cli("show", tmp_path / "absent"))
