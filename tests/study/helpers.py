"""Arguments shared by the study tests."""


def fast_study_args(data, *extra) -> list:
    """optimize options for a quick CPU study on the tiny set."""
    return ["optimize", "--data", data, "--device", "cpu", "--precision", "fp32", *extra]
