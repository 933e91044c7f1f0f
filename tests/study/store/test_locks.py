import optuna
import pytest

from ..helpers import fast_study_args


@pytest.mark.parametrize("name", ["runs/2026-12", "../elsewhere", "x" * 300])
def test_any_study_name_optuna_takes_can_be_run(run_cli, tiny_dataset, in_tmp, name):
    # The study's lock file beside the SQLite database is named after the study.
    args = ["--trials", 1, "--max-epochs", 1, "--no-seed-configs", "--study-name", name]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name=name, storage="sqlite:///storage/catdog.db")
    assert len(study.trials) == 1
    assert sorted(p.parent for p in in_tmp.rglob("*.lock")) == [in_tmp / "storage"] * 2
