"""What the appliance's programs print, and how.

Each program logs through the logger `app` (its modules through `app.<module>`), set up once by
`python -m app` (app/__main__.py): one line per message, the message alone, flushed at once, on
stdout, and warnings and errors on stderr. supervisord's wrapper (app/runtime/prefix_output.py) puts the
program's name in front of every line, so the lines carry no prefix of their own.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
import tempfile

ROOT = "app"
# What TensorFlow's C++ side prints while it loads, whatever TF_CPP_MIN_LOG_LEVEL says: absl's
# notice that it logs before being set up, and oneDNN's note that it is on (twice each, once per
# library). The start line of train and eval says what a user needs of it.
START_UP_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*"
    r"|I\d{4} [\d:.]+ +\d+ cpu_feature_guard\.cc:\d+\] .*"
    r"|To enable the following instructions: .*)$")


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def configure() -> None:
    """Sends the app's records to stdout (information) and stderr (warnings and errors)."""
    logger = logging.getLogger(ROOT)
    if logger.handlers:
        return
    logger.setLevel(logging.INFO)
    logger.propagate = False  # TensorFlow's own Python logger stays as TensorFlow set it
    plain = logging.Formatter("%(message)s")
    information = logging.StreamHandler(sys.stdout)
    information.addFilter(_BelowWarning())
    problems = logging.StreamHandler(sys.stderr)
    problems.setLevel(logging.WARNING)
    for handler in (information, problems):
        handler.setFormatter(plain)
        logger.addHandler(handler)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras with their start-up chatter held back: everything they print
    on stderr meanwhile is passed on, but for START_UP_CHATTER."""
    printed: list[str] = []
    with _stderr_captured(printed):
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    for line in printed:
        if not START_UP_CHATTER.match(line):
            print(line, file=sys.stderr)


@contextlib.contextmanager
def _stderr_captured(lines: list[str]):
    """Points file descriptor 2 (where C++ code writes too) at a temporary file meanwhile, and
    adds what was written there to `lines`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += capture.read().decode(errors="replace").splitlines()


def duration(seconds: float) -> str:
    """How long, for people: 1h02m, 3m07s."""
    if not math.isfinite(seconds):
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
