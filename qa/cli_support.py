"""Running a command so that a user sees one clear line, never a traceback."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Callable

from qa.errors import QAError


def run_safely(command: Callable[[], int]) -> int:
    shown, warnings.showwarning = warnings.showwarning, _one_line
    try:
        return command()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing was changed.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
        if os.environ.get("QA_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run again with QA_DEBUG=1 for details).", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the user reads it: its sentence, without the file and line of code that raised it."""
    print(f"warning: {message}", file=file or sys.stderr)
