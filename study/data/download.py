"""Fetch the report's data set from Kaggle and put it where the study looks for real data.

The archive is downloaded and unpacked in a hidden temporary folder next to the destination and
moved into place with one rename once the layout is found in it, so the destination is either
absent or whole: an interrupted or failed download leaves nothing behind.

The `kaggle` package (2.x) is imported only here, when the command runs: importing it prints a
long sign-in banner when no credentials exist, `authenticate()` ends with SystemExit(1) instead
of raising, and network failures surface as `requests` exceptions. Each becomes a DownloadError
whose message tells the user what to do.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from catdog.dataset import SPLITS, DatasetError, find_dataset_root, list_split
from catdog.errors import CatdogError
from study.store.disk import describe_bytes, disk_of, free_bytes, is_disk_full

KAGGLE_DATASET = "chetankv/dogs-cats-images"
CREDENTIALS_HELP = (
    "no Kaggle credentials found: create an API token at https://www.kaggle.com/settings/api "
    "and put it in the KAGGLE_API_TOKEN variable or the file ~/.kaggle/access_token "
    "(a legacy key works too: KAGGLE_USERNAME and KAGGLE_KEY, or ~/.kaggle/kaggle.json)"
)


class DownloadError(CatdogError, RuntimeError):
    """A download that did not finish and left nothing in place; the message says what to do."""


def download_dataset(
    dest: Path, *, dataset: str = KAGGLE_DATASET, echo: Callable[[str], None] = print
) -> bool:
    """Put Kaggle's `dataset` at `dest` in the study's layout; False when it is already there."""
    dest = Path(dest)
    if dest.exists():
        try:
            root = find_dataset_root(dest)
        except DatasetError:
            raise DownloadError(
                f"{dest} exists but holds no data set: remove it or choose another --dest"
            ) from None
        echo(f"the data set is already in {root}: nothing to do")
        return False
    api = _signed_in_api()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.download-", dir=dest.parent) as tmp:
        archive = _download(api, dataset, Path(tmp) / "archive")
        unpacked = _unpack(archive, Path(tmp) / "unpacked", dest)
        try:
            root = find_dataset_root(unpacked)
        except DatasetError:
            raise DownloadError(
                f"the archive of {dataset} holds no {SPLITS[0]}/ and {SPLITS[1]}/ folders; "
                "nothing was written: has the data set changed on Kaggle?"
            ) from None
        os.replace(root, dest)  # one rename on the same file system: dest appears whole
    counts = ", ".join(f"{len(list_split(dest / split).files)} {split}" for split in SPLITS)
    echo(f"downloaded {dataset} to {dest}: {counts} image files")
    echo(f"check it with: catdog-study data check {dest}")
    return True


def _signed_in_api():
    """A kaggle KaggleApi that found credentials (any form the package accepts)."""
    banner = io.StringIO()  # what the package prints while it looks for credentials
    try:
        with contextlib.redirect_stdout(banner):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as error:
        raise DownloadError(
            f"the kaggle package cannot be imported ({error}): pip install 'kaggle>=2,<3' six"
        ) from None
    import requests  # installed with kaggle

    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(banner):
            api.authenticate()  # checks an access token with Kaggle: needs the network
    except SystemExit:  # the package's way of saying it found no usable credentials
        raise DownloadError(CREDENTIALS_HELP) from None
    except requests.RequestException as error:
        raise DownloadError(_network_message(error)) from None
    return api


def _download(api, dataset: str, folder: Path) -> Path:
    """The dataset's zip archive, downloaded into `folder`."""
    import requests  # installed with kaggle

    folder.mkdir()
    try:
        api.dataset_download_files(dataset, path=str(folder), quiet=False, unzip=False)
    except requests.RequestException as error:  # before OSError: it is one
        raise DownloadError(_network_message(error, dataset)) from None
    except OSError as error:
        raise DownloadError(f"cannot write the download in {folder.parent}: {error}") from None
    archives = sorted(folder.glob("*.zip"))
    if len(archives) != 1:
        raise DownloadError(f"Kaggle sent no zip archive of {dataset}; run the command again")
    return archives[0]


def _unpack(archive: Path, folder: Path, dest: Path) -> Path:
    """`archive` extracted into `folder` (zipfile drops absolute and '..' member paths).

    DownloadError when its disk has no room for the unpacked files: told before unpacking from
    the sizes the archive lists, or when a write finds the disk full; the caller's temporary
    folder then goes with whatever was unpacked.
    """
    needed = 0
    try:
        with zipfile.ZipFile(archive) as opened:
            needed = sum(member.file_size for member in opened.infolist())
            if free_bytes(folder.parent) < needed:
                raise _no_room(archive, dest, needed)
            opened.extractall(folder)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise DownloadError(
            f"the downloaded archive is damaged ({error}); nothing was written: "
            "run the command again"
        ) from None
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise _no_room(archive, dest, needed) from None
    return folder


def _no_room(archive: Path, dest: Path, needed: int) -> DownloadError:
    """Nothing unpacked is kept: the caller's temporary folder goes, with the archive."""
    return DownloadError(
        f"no room to unpack the data set next to {dest} (the disk at {disk_of(dest.parent)}): "
        f"its {describe_bytes(archive.stat().st_size)} archive unpacks to "
        f"{describe_bytes(needed)}, {describe_bytes(free_bytes(dest.parent))} free; nothing "
        "was kept: free space there or give --dest a folder on another disk"
    )


def _network_message(error: Exception, dataset: str = KAGGLE_DATASET) -> str:
    """What went wrong talking to Kaggle, and what to do about it, in one line."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        return (
            "Kaggle refused the credentials (HTTP 401): create a new API token at "
            "https://www.kaggle.com/settings/api"
        )
    if status == 403:
        return (
            f"Kaggle refused the download of {dataset} (HTTP 403): sign in on kaggle.com, "
            "open the data set's page and accept its terms, then run the command again"
        )
    if status == 404:
        return f"Kaggle has no data set {dataset} (HTTP 404)"
    if status is not None:
        return f"Kaggle answered HTTP {status}; try again later"
    return (
        f"cannot reach Kaggle ({type(error).__name__}): check the internet connection "
        "(or HTTPS_PROXY) and run the command again"
    )
