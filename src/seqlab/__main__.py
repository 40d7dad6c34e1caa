"""The command line's entry (``python -m seqlab`` and the ``seqlab`` console script): Ctrl-C at any moment,
while torch and seqlab import included, ends with one line and exit code 130, never a traceback.

This module imports only the standard library until its handler is in place (``seqlab/__init__.py`` imports
nothing heavy either: its names load on first use). While the heavy modules import, Ctrl-C ends the process at
once: nothing is written yet, and a ``KeyboardInterrupt`` raised inside a library's import can surface as another
error (a half-imported numpy re-imported by torch ends in a RecursionError). Once they are in, Ctrl-C is a
``KeyboardInterrupt`` again, which ``seqlab.cli.main`` turns into a checkpoint or a one-line abort."""

import os
import signal
import sys

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C ended


def abort_during_start_up(signum, frame) -> None:
    os.write(2, b"seqlab: aborted\n")
    os._exit(INTERRUPTED)


def run() -> int:
    interactive = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored (nohup, a & job)
    if interactive:
        signal.signal(signal.SIGINT, abort_during_start_up)
    from seqlab.cli import main  # torch and every model family: seconds on a loaded machine

    if interactive:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return main()
    except KeyboardInterrupt:  # while the arguments are parsed (main handles it within a command)
        print("seqlab: aborted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(run())
