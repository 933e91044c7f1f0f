import json
import os
from pathlib import Path

import pytest

from catdog.names import printable


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (b"chat_\xe9t\xe9.jpg", "chat_\\xe9t\\xe9.jpg"),  # Latin-1 from a Windows archive
        (b"\x82\xa0.jpg", "\\x82\\xa0.jpg"),  # CP437 / Shift-JIS bytes
        ("chat_été.jpg".encode(), "chat_été.jpg"),  # UTF-8 is shown as it is
        (b"two\nlines.jpg", "two\\x0alines.jpg"),  # a message stays one line
    ],
)
def test_a_name_is_shown_with_each_undecodable_byte_escaped(name, shown):
    path = Path(os.fsdecode(name))
    assert printable(path) == printable(name) == shown
    # What is shown can be printed to any UTF-8 stream and stored as UTF-8 JSON.
    assert json.loads(json.dumps(shown, ensure_ascii=False).encode().decode()) == shown


def test_a_lone_surrogate_that_no_byte_stands_for_is_escaped_too():
    assert printable("photo_\ud800.jpg") == "photo_\\ud800.jpg"
