"""What every command-line tool of the project shares: it ends quietly when its reader goes away.

`make plan | head` closes the pipe after ten lines; Python then raises BrokenPipeError on the next write or on the
flush at exit, and prints a traceback. The Python documentation's "Note on SIGPIPE" (signal module) advises pointing
standard output at os.devnull once that happens: this module does it on the first failed write, so the tool carries
on (it still writes its files) and exits with its own status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TextIO


class QuietStdout:
    """Standard output that turns into /dev/null when the reading end of its pipe is closed."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def _gone(self) -> None:
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            # Whatever the buffer still holds is flushed into /dev/null at exit instead of raising again.
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def run(main: Callable[[], int]) -> NoReturn:
    """sys.exit(main()), with standard output that a closed pipe cannot turn into a traceback."""
    quiet = QuietStdout(sys.stdout)
    sys.stdout = quiet
    try:
        status = main()
        quiet.flush()
    finally:
        sys.stdout = sys.__stdout__
    sys.exit(status)
