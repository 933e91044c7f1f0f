import tomllib
from pathlib import Path

import pytest

from study.space.builtin import extended_space, report_space
from study.space.dimensions import SpaceError
from study.space.file import load_space_file, parse_space, space_to_toml

from ..helpers import fast_study_args

REPOSITORY = Path(__file__).parents[3]

# Every kind, an or-zero log range, a list and a single-value condition, a fixed value.
WRITTEN = """\
[optimizer]
kind = "categorical"
choices = ["sgd", "adam", "adamw"]

[lr]
kind = "log"
low = 0.001
high = 0.1

[epochs]
kind = "int"
low = 1
high = 4

[momentum]
kind = "float"
low = 0.5
high = 0.95
when = { optimizer = "sgd" }

[beta1]
kind = "fixed"
value = 0.85
when = { optimizer = ["adam", "adamw"] }

[weight_decay]
kind = "log"
low = 1e-05
high = 0.01
or_zero = true

[batch_size]
kind = "fixed"
value = 64
"""


def _errors(result) -> list[str]:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_a_space_file_round_trips_through_space_show(run_cli, in_tmp):
    Path("mine.toml").write_text(WRITTEN)
    result = run_cli("space", "show", "--space", "mine.toml")
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.output) == tomllib.loads(WRITTEN)
    assert f"fingerprint {load_space_file(Path('mine.toml')).fingerprint()}" in result.output
    # And what it prints is a space file that reads back to the same space.
    Path("shown.toml").write_text(result.output)
    assert load_space_file(Path("shown.toml")).dimensions == parse_space(WRITTEN, "x").dimensions


@pytest.mark.parametrize("space", [report_space(20), extended_space(7)])
def test_built_in_spaces_written_as_files_read_back_with_the_same_fingerprint(space):
    assert parse_space(space_to_toml(space), "file").fingerprint() == space.fingerprint()


def test_space_show_prints_the_extended_space(run_cli):
    result = run_cli("space", "show", "--space", "extended", "--max-epochs", "7")
    assert result.exit_code == 0, result.output
    assert f"search space extended (fingerprint {extended_space(7).fingerprint()})" in (
        result.output
    )
    assert 'when = { optimizer = ["adam", "adamw"] }' in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[lerning_rate]\nkind = "log"\nlow = 0.1\nhigh = 1.0\n',
            "unknown dimension 'lerning_rate'",
        ),
        (
            '[lr]\nkind = "log"\nlow = 0.3\nhigh = 0.001\n',
            "[lr] empty range: low 0.3 is above high 0.001",
        ),
        ('[epochs]\nkind = "int"\nlow = 5\nhigh = 5\n', "[epochs] range [5, 5] holds one value"),
        (
            '[momentum]\nkind = "float"\nlow = 0.0\nhigh = 0.9\nwhen = { optimiser = "sgd" }\n',
            "[momentum] condition on 'optimiser', which is not a dimension",
        ),
        (
            '[momentum]\nkind = "float"\nlow = 0.0\nhigh = 0.9\nwhen = { optimizer = "sgd" }\n'
            '[optimizer]\nkind = "categorical"\nchoices = ["sgd", "adam"]\n',
            "[momentum] condition on 'optimizer', which is below it: move it above",
        ),
        (
            '[optimizer]\nkind = "categorical"\nchoices = ["sgd"]\n'
            '[momentum]\nkind = "float"\nlow = 0.0\nhigh = 0.9\nwhen = { optimizer = "adam" }\n',
            "[momentum] condition optimizer = 'adam' can never hold",
        ),
        (
            '[batch_size]\nkind = "categorical"\nchoices = [32, "64"]\n',
            '[batch_size] batch_size takes an integer, not "64"',
        ),
        ("shuffle = 1\n", "[shuffle] shuffle takes true or false, not 1"),
        (
            '[batch_size]\nkind = "float"\nlow = 16\nhigh = 64\n',
            "kind float needs a number setting",
        ),
        ('[lr]\nkind = "log"\nlow = 0.0\nhigh = 0.1\n', "a log range must start above 0"),
        (
            '[optimizer]\nkind = "fixed"\nvalue = "rmsprop"\n',
            "'rmsprop' is not a possible optimizer",
        ),
        ('[min_crop_scale]\nkind = "float"\nlow = 0.5\nhigh = 1.5\n', "1.5 is not a possible"),
        ('[lr]\nkind = "log"\nlow = 0.01\nhigh = 0.1\nstep = 2\n', "[lr] unknown key 'step'"),
        ('[lr]\nkind = "uniform"\nlow = 0.01\nhigh = 0.1\n', "[lr] kind must be one of"),
        ('[lr]\nkind = "log"\nhigh = 0.1\n', "[lr] kind log needs 'low'"),
        (
            '[lr]\nkind = "log"\nlow = 0.01\nhigh = 0.1\nepochs = 3\n',
            "put fixed settings at the top",
        ),
        ("[lr\n", "not valid TOML"),
        ("", "defines no dimensions"),
    ],
)
def test_each_mistake_in_a_space_file_gives_its_message(run_cli, in_tmp, text, message):
    Path("space.toml").write_text(text)
    errors = _errors(run_cli("space", "show", "--space", "space.toml"))
    assert len(errors) == 1, errors
    assert message in errors[0]
    assert errors[0].startswith("Error: space.toml: ")


def test_every_mistake_is_listed_one_line_each_and_nothing_trains(run_cli, tiny_dataset):
    Path("space.toml").write_text(
        '[optimizer]\nkind = "categorical"\nchoices = ["sgd", "lion"]\n'
        '[lr]\nkind = "log"\nlow = 0.3\nhigh = 0.001\n'
        '[beta1]\nkind = "float"\nlow = 0.8\nhigh = 0.9\nwhen = { optimiser = "adam" }\n'
    )
    result = run_cli(*fast_study_args(tiny_dataset, "--space", "space.toml", "--trials", 1))
    errors = _errors(result)
    assert len(errors) == 3, result.output
    assert "'lion' is not a possible optimizer" in errors[0]
    assert "empty range" in errors[1] and "'optimiser'" in errors[2]
    assert not Path("storage/catdog.db").exists()  # refused before any study was made


def test_a_missing_space_file_is_one_error(run_cli):
    errors = _errors(run_cli("space", "show", "--space", "nowhere.toml"))
    assert errors == ["Error: search space file nowhere.toml does not exist"]


def test_the_shipped_example_loads_and_is_the_one_in_the_readme():
    example = REPOSITORY / "examples" / "space.toml"
    space = load_space_file(example)
    assert space.is_conditional and space.max_epochs == 20
    # The README shows one of its tables as it is in the file.
    readme = (REPOSITORY / "README.md").read_text()
    shown = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    assert shown.startswith("[") and "kind = " in shown and shown in example.read_text()


def test_a_plain_value_fixes_a_setting_and_ints_count_as_floats():
    space = parse_space(
        'shuffle = false\nrotation_degrees = 10\n[lr]\nkind = "log"\nlow = 1e-3\nhigh = 1e-1\n',
        "x",
    )
    fixed = {d.name: d for d in space.dimensions}
    assert fixed["shuffle"].kind == "fixed" and fixed["shuffle"].value is False
    assert fixed["rotation_degrees"].value == 10.0
    assert isinstance(fixed["rotation_degrees"].value, float)


def test_a_space_error_is_a_value_error_naming_the_file():
    with pytest.raises(SpaceError, match="^f.toml: "):
        parse_space("[lr]\n", "f.toml")
