"""`data download`: only the network calls of the kaggle package are replaced; the archive is a
real zip built here, so unpacking and finding the layout run for real. HOME is a temporary
folder, so the user's own Kaggle files are never read or touched."""

import contextlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import requests

from study.data.download import CREDENTIALS_HELP, KAGGLE_DATASET

TOKEN = "KGAT_test_token"


@pytest.fixture
def kaggle_api(tmp_path, monkeypatch):
    """The kaggle package's KaggleApi, seeing a fresh HOME with no credentials at all."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in [n for n in os.environ if n.startswith("KAGGLE_")] + ["XDG_CONFIG_HOME"]:
        monkeypatch.delenv(name, raising=False)
    with contextlib.redirect_stdout(io.StringIO()):  # its sign-in banner
        from kaggle.api.kaggle_api_extended import KaggleApi
    # The package fixes where kaggle.json lives when it is first imported, once per process.
    monkeypatch.setattr(KaggleApi, "config_dir", str(home / ".kaggle"))
    monkeypatch.setattr(KaggleApi, "config", str(home / ".kaggle" / "kaggle.json"))
    # Checking an access token asks Kaggle who owns it: a network call, answered here.
    monkeypatch.setattr(
        KaggleApi, "_introspect_token", lambda self, token: "alice" if token == TOKEN else None
    )
    return KaggleApi


@pytest.fixture
def kaggle_zip(tiny_dataset) -> bytes:
    """The tiny set zipped as Kaggle ships the real one: dataset/training_set/cats/... ."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(tiny_dataset.rglob("*.jpg")):
            archive.write(path, f"dataset/{path.relative_to(tiny_dataset)}")
    return buffer.getvalue()


def _serve(monkeypatch, kaggle_api, answer):
    """Replace the download call: `answer(folder)` writes into it or raises. Returns the calls."""
    calls = []

    def download(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=()):
        calls.append({"dataset": dataset, "user": self.config_values.get("username")})
        answer(Path(path) / f"{dataset.split('/')[1]}.zip")

    monkeypatch.setattr(kaggle_api, "dataset_download_files", download)
    return calls


def _sign_in(form: str, home: Path, monkeypatch) -> None:
    kaggle_dir = home / ".kaggle"
    kaggle_dir.mkdir(exist_ok=True)
    if form == "KAGGLE_API_TOKEN":
        monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    elif form == "access_token":
        (kaggle_dir / "access_token").write_text(TOKEN + "\n")
    elif form == "KAGGLE_USERNAME":
        monkeypatch.setenv("KAGGLE_USERNAME", "alice")
        monkeypatch.setenv("KAGGLE_KEY", "0123abcd")
    elif form == "kaggle.json":
        (kaggle_dir / "kaggle.json").write_text(json.dumps({"username": "alice", "key": "k"}))
        (kaggle_dir / "kaggle.json").chmod(0o600)


def _one_error(result) -> str:
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    "form", ["KAGGLE_API_TOKEN", "access_token", "KAGGLE_USERNAME", "kaggle.json"]
)
def test_download_unpacks_into_the_layout_and_a_second_run_does_nothing(
    run_cli, kaggle_api, kaggle_zip, tiny_dataset, monkeypatch, form
):
    _sign_in(form, Path(os.environ["HOME"]), monkeypatch)
    calls = _serve(monkeypatch, kaggle_api, lambda zip_path: zip_path.write_bytes(kaggle_zip))
    result = run_cli("data", "download")
    assert result.exit_code == 0, result.output
    assert calls == [{"dataset": KAGGLE_DATASET, "user": "alice"}]
    dest = Path("storage/data/dogs-cats-images")
    for split in ("training_set", "test_set"):
        for folder in ("cats", "dogs"):
            assert _left_in(dest / split / folder) == _left_in(tiny_dataset / split / folder)
    assert _left_in(dest.parent) == ["dogs-cats-images"]  # no temporary folder left
    assert "Authentication required" not in result.output  # the package's banner is not shown
    assert "catdog-study data check" in result.output

    again = run_cli("data", "download")
    assert again.exit_code == 0, again.output
    assert "already" in again.output and "nothing to do" in again.output
    assert len(calls) == 1


def test_missing_credentials(run_cli, kaggle_api, monkeypatch):
    calls = _serve(monkeypatch, kaggle_api, _fail_if_called)
    result = run_cli("data", "download", "--dest", "data/cats-dogs")
    assert _one_error(result) == f"Error: {CREDENTIALS_HELP}"
    assert "Authentication required" not in result.output
    assert calls == []
    assert not Path("data").exists()


@pytest.mark.parametrize("where", ["download", "token check"])
def test_network_failure(run_cli, kaggle_api, monkeypatch, where):
    def unreachable(*_args):
        raise requests.ConnectionError("Failed to resolve 'www.kaggle.com'")

    if where == "token check":
        monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
        monkeypatch.setattr(kaggle_api, "_introspect_token", unreachable)
    else:
        _sign_in("KAGGLE_USERNAME", Path(os.environ["HOME"]), monkeypatch)
    _serve(monkeypatch, kaggle_api, unreachable)
    result = run_cli("data", "download", "--dest", "data/cats-dogs")
    assert _one_error(result) == (
        "Error: cannot reach Kaggle (ConnectionError): check the internet connection "
        "(or HTTPS_PROXY) and run the command again"
    )
    assert _left_in(Path("data")) == []


def test_refused_download(run_cli, kaggle_api, monkeypatch):
    def forbidden(_zip_path):
        response = requests.Response()
        response.status_code = 403
        raise requests.HTTPError("403 Client Error: Forbidden", response=response)

    _sign_in("KAGGLE_USERNAME", Path(os.environ["HOME"]), monkeypatch)
    _serve(monkeypatch, kaggle_api, forbidden)
    result = run_cli("data", "download", "--dest", "data/cats-dogs")
    assert "accept its terms" in _one_error(result)
    assert _left_in(Path("data")) == []


@pytest.mark.parametrize("damage", ["garbage", "cut short", "bad checksum"])
def test_corrupt_zip(run_cli, kaggle_api, kaggle_zip, monkeypatch, damage):
    if damage == "garbage":
        content = b"<html>Service Unavailable</html>"
    elif damage == "cut short":
        content = kaggle_zip[: len(kaggle_zip) // 2]
    else:  # flip one byte of the first member's data
        offset = 30 + len("dataset/") + 40
        content = (
            kaggle_zip[:offset] + bytes([kaggle_zip[offset] ^ 0xFF]) + kaggle_zip[offset + 1 :]
        )
    _sign_in("kaggle.json", Path(os.environ["HOME"]), monkeypatch)
    _serve(monkeypatch, kaggle_api, lambda zip_path: zip_path.write_bytes(content))
    result = run_cli("data", "download", "--dest", "data/cats-dogs")
    error = _one_error(result)
    assert error.startswith("Error: the downloaded archive is damaged (")
    assert error.endswith("nothing was written: run the command again")
    assert _left_in(Path("data")) == []


def test_archive_without_the_layout(run_cli, kaggle_api, monkeypatch):
    def other_archive(zip_path):
        with zipfile.ZipFile(zip_path, "w") as archive:
            archive.writestr("readme.txt", "not the data set")

    _sign_in("kaggle.json", Path(os.environ["HOME"]), monkeypatch)
    _serve(monkeypatch, kaggle_api, other_archive)
    result = run_cli("data", "download", "--dest", "data/cats-dogs")
    assert "holds no training_set/ and test_set/ folders" in _one_error(result)
    assert _left_in(Path("data")) == []


def test_an_existing_folder_that_is_not_the_data_set_is_left_alone(
    run_cli, kaggle_api, monkeypatch
):
    Path("data/cats-dogs").mkdir(parents=True)
    Path("data/cats-dogs/mine.txt").write_text("keep me")
    _serve(monkeypatch, kaggle_api, _fail_if_called)
    result = run_cli("data", "download", "--dest", "data/cats-dogs")
    assert "exists but holds no data set" in _one_error(result)
    assert Path("data/cats-dogs/mine.txt").read_text() == "keep me"


def _fail_if_called(*_args):
    raise AssertionError("nothing should be downloaded")


def _archive_of(tiny_dataset, extra_bytes: int):
    """An archive of the tiny set plus a file of zeros that packs small and unpacks large."""

    def write(zip_path):
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(tiny_dataset.rglob("*.jpg")):
                archive.write(path, f"dataset/{path.relative_to(tiny_dataset)}")
            archive.writestr("dataset/training_set/cats/big.jpg", bytes(extra_bytes))

    return write


@pytest.mark.parametrize("when", ["before unpacking", "while unpacking"])
def test_a_disk_with_room_for_the_archive_but_not_its_files(
    run_cli, kaggle_api, tiny_dataset, small_disk, monkeypatch, when
):
    disk = small_disk("3m")
    if when == "while unpacking":  # the archive's sizes say it fits; the disk fills meanwhile
        import study.data.download as download_module

        monkeypatch.setattr(download_module, "free_bytes", lambda path: 1 << 40, raising=False)
    _sign_in("kaggle.json", Path(os.environ["HOME"]), monkeypatch)
    _serve(monkeypatch, kaggle_api, _archive_of(tiny_dataset, 8 << 20))
    result = run_cli("data", "download", "--dest", disk / "cats-dogs")
    error = _one_error(result)
    assert error.startswith(
        f"Error: no room to unpack the data set next to {disk / 'cats-dogs'} (the disk at "
        f"{disk}): its "
    )
    assert error.endswith(
        "free; nothing was kept: free space there or give --dest a folder on another disk"
    )
    assert _left_in(disk) == []  # neither the archive nor half of its files
