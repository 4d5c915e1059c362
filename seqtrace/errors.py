"""The one place where failures become what a user sees: a line on stderr and an exit code.

SPEC: 0 success, 1 the check or report found what it looks for, 2 usage or input error,
3 internal error. No traceback reaches a user; ``SEQTRACE_DEBUG=1`` shows it.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    """The user's input is wrong; the message says what to do instead."""


def render_error(message: str) -> str:
    """The single shape of every error line: ``seqtrace: error: <one line>``."""
    first = " ".join(str(message).split()) or "unknown error"
    return f"seqtrace: error: {first}"


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(render_error(message), file=sys.stderr)
    raise SystemExit(code)


def internal_error(exc: BaseException) -> NoReturn:
    if os.environ.get("SEQTRACE_DEBUG"):
        traceback.print_exception(exc)
    fail(
        f"internal error ({type(exc).__name__}: {exc}); rerun with SEQTRACE_DEBUG=1 and "
        "report it with the output",
        EXIT_INTERNAL,
    )
