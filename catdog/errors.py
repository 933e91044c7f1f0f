"""The one root of every error a user can cause and fix, for catdog and the study alike.

Each error keeps a builtin base too (as Optuna's `UpdateFinishedTrialError(OptunaError,
RuntimeError)` does), so code that catches ValueError or RuntimeError still catches it. The
command line shows a CatdogError as one `Error: <message>` line per message line and exits 1;
anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class CatdogError(Exception):
    """A problem the user can fix; the message says what was found and what to do."""


# What the command line (and every `--jobs` worker) turns into "Error: ..." lines: our own
# errors, and the file-system errors whose message already names the path and the problem.
USER_ERRORS: tuple[type[BaseException], ...] = (
    CatdogError,
    FileExistsError,
    FileNotFoundError,
    PermissionError,
)
