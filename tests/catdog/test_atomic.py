import os
import stat

import pytest

from catdog.atomic import atomic_write


def test_written_file_replaces_the_old_one_with_plain_permissions(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as temporary:
        temporary.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(OSError), atomic_write(target) as temporary:
        temporary.write_bytes(b"half")
        raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]
