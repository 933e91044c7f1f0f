"""Arguments shared by the study tests."""


def fast_study_args(data, *extra) -> list:
    """optimize options for a quick CPU study on the tiny set."""
    return ["optimize", "--data", data, "--device", "cpu", "--precision", "fp32", *extra]


def one_error_line(result) -> str:
    """The one `Error:` line of a command that failed as a user's mistake (exit 1, no
    traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]
