"""File names as text a person can read and any terminal or UTF-8 store can take.

On Linux a file name is bytes. An archive made on Windows or an old Mac and unpacked by `unzip`
leaves names in Latin-1 or CP437, such as the bytes `chat_\\xe9t\\xe9.jpg`; Python gives those
as text with "surrogate" characters, which a UTF-8 terminal, JSON for a browser or a database
refuses. `printable` writes each such byte as a backslash escape instead, the way `ls -b` does.
Code that opens files keeps the Path itself: only what is printed or stored goes through here.
"""

from __future__ import annotations

import os
import re

# Control characters would break a one-line message (a newline in a file name is legal).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str | os.PathLike) -> str:
    """`text` (a path, or a message naming one) with undecodable bytes and control characters
    as backslash escapes: the bytes b"chat_\\xe9.jpg" give the text `chat_\\xe9.jpg`."""
    text = os.fspath(text)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        encoded = text.encode("utf-8", "surrogateescape")  # the name's own bytes back
    except UnicodeEncodeError:  # a lone surrogate that no byte stands for
        encoded = text.encode("utf-8", "backslashreplace")
    text = encoded.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)
