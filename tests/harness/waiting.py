"""Waiting for something a user would wait for, and saying what never came.

Every wait in the tests and the benchmarks goes through wait_until. It raises GaveUp, whose
message says how long it waited and for what; in pytest a test that gives up fails with that
line (wait_until's own frame is hidden from the traceback, so the test's line is the last one
shown). A condition that sees waiting is no use any longer (the stack exited, the container
died) raises GaveUp itself, at once.
"""
from __future__ import annotations

import time


class GaveUp(Exception):
    """What was waited for did not happen (in time, or at all)."""


def wait_until(condition, timeout: float, what: str, interval: float = 0.5):
    """Returns condition()'s first truthy value; raises GaveUp after `timeout` seconds."""
    __tracebackhide__ = True  # pytest: show the caller's line, not this loop
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise GaveUp(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
