"""A time limit for the property tests: a read or load that hangs fails the test instead of stalling the run."""

import signal
from contextlib import contextmanager

SECONDS = 10
"""Longest a single read or load may take before it counts as a hang (a valid one takes milliseconds)."""


class Hang(Exception):
    """Raised by :func:`time_limit`; deliberately not a LucidaeError."""


@contextmanager
def time_limit(seconds=SECONDS):
    """Raise :class:`Hang` in the block after ``seconds`` (SIGALRM: main thread, POSIX)."""

    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
