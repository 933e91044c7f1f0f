"""Every file in a folder and below it, as torchvision's ImageFolder finds them, but safely.

ImageFolder walks with os.walk(followlinks=True): a link to a folder (`dogs/batch2 ->
../../extra_dogs`) is entered like a folder. So is it here, with two differences ImageFolder
lacks: each real folder is entered once, under its own path when it has one below the walk's
folder, else under the first link to it (a link back to a folder it is in would otherwise loop
until the path is too long, and two ways to one folder would count its images twice); and a
folder that cannot be read is named with the reason instead of being passed over in silence.
Hidden files and folders (`.DS_Store`, `.thumbnails/`) are listed apart and never entered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from catdog.names import printable

FolderId = tuple[int, int]  # (st_dev, st_ino): the same folder, whichever path leads to it


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str  # one line, for the user; paths in it are printable()


@dataclass(frozen=True)
class FolderWalk:
    files: list[Path]  # in ImageFolder's order; a link to a file is listed as it is
    # Folders not entered and links that lead nowhere, with the reason.
    skipped: list[SkippedFile] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)  # hidden files and folders, not entered


def folder_id(folder: Path) -> FolderId:
    """Which folder `folder` is, following links; OSError when it cannot be reached."""
    status = os.stat(folder)
    return status.st_dev, status.st_ino


def walk_folder(folder: Path, entered: dict[FolderId, Path] | None = None) -> FolderWalk:
    """The files in `folder` and below it, following links to folders, each folder once.

    entered: folders listed, or to be listed, under another path (by id, with that path), so
    that several walks share it: the class folders of one split, with real_folders() of each.
    The folders of this walk are added. A link to one of them, or to a folder it is in, is
    skipped with the reason.
    """
    folder = Path(folder)
    entered = {} if entered is None else entered
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    hidden: list[Path] = []
    try:
        root_id = folder_id(folder)
    except OSError as error:
        return FolderWalk([], [SkippedFile(folder, _unreadable(error))])
    for identity, path in real_folders(folder).items():
        entered.setdefault(identity, path)
    root = os.path.realpath(folder)
    pending = [(folder, (root_id,))]  # (folder, ids of it and the folders it is in)
    while pending:
        directory, ancestors = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            skipped.append(SkippedFile(directory, _unreadable(error)))
            continue
        below = []
        for entry in entries:
            path = directory / entry.name
            if entry.name.startswith("."):
                hidden.append(path)
            elif entry.is_symlink() and (reason := missing_target(path)) is not None:
                skipped.append(SkippedFile(path, reason))
            elif not _is_folder(entry):
                files.append(path)
            elif (reason := _not_entered(path, ancestors, root, entered)) is not None:
                skipped.append(SkippedFile(path, reason))
            else:
                below.append((path, (*ancestors, folder_id(path))))
        pending += reversed(below)  # depth first, in name order
    files.sort(key=imagefolder_order)
    return FolderWalk(files, sorted(skipped, key=lambda item: item.path), sorted(hidden))


def real_folders(folder: Path) -> dict[FolderId, Path]:
    """The folders in `folder` and below it reached without following a link, by id; hidden
    ones and those that cannot be read are left out."""
    found: dict[FolderId, Path] = {}
    pending = [Path(folder)]
    while pending:
        directory = pending.pop()
        try:
            found.setdefault(folder_id(directory), directory)
            with os.scandir(directory) as scan:
                below = [entry.name for entry in scan if _is_real_folder(entry)]
        except OSError:
            continue
        pending += [directory / name for name in below]
    return found


def _is_real_folder(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)


def imagefolder_order(path: Path) -> tuple[str, str]:
    """Sort key of ImageFolder's order: by folder path as text, then by name in the folder
    (it sorts os.walk's (folder, subfolders, files) and then each folder's files)."""
    return str(path.parent), path.name


def missing_target(link: Path) -> str | None:
    """Why a link leads nowhere ("a link to gone.jpg, which does not exist"), or None."""
    if not os.path.islink(link):
        return None
    target = printable(os.readlink(link))
    try:
        os.stat(link)
    except FileNotFoundError:
        return f"a link to {target}, which does not exist"
    except OSError as error:  # a loop of links, a folder on the way that cannot be read
        return f"a link to {target}, which cannot be followed ({error.strerror or error})"
    return None


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links; False for a link that leads nowhere
    except OSError:  # a folder on the way that cannot be read: opening it will say so
        return False


def _not_entered(
    folder: Path, ancestors: tuple[FolderId, ...], root: str, entered: dict[FolderId, Path]
) -> str | None:
    """Why `folder` is not entered (a loop, listed already, unreadable), or None: enter it,
    and it is now in `entered`. root: the real path of the folder the walk started from."""
    try:
        identity = folder_id(folder)
    except OSError as error:
        return _unreadable(error)
    if identity in ancestors or Path(root).is_relative_to(os.path.realpath(folder)):
        target = printable(os.readlink(folder) if folder.is_symlink() else folder)
        return f"a link to {target}, a folder that holds it: not followed (it would loop)"
    first = entered.setdefault(identity, folder)
    if first != folder:
        return f"the same folder as {printable(first)}: its images are listed once, there"
    return None


def _unreadable(error: OSError) -> str:
    return f"folder cannot be read ({error.strerror or error})"
