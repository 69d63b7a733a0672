"""What the appliance's programs print, and how.

Each program logs through the logger `app` (its modules through `app.<module>`), set up once by
`python -m app` (app/__main__.py): one line per message, the message alone, flushed at once, on
stdout, and warnings and errors on stderr. supervisord's wrapper (app/prefix_output.py) puts the
program's name in front of every line, so the lines carry no prefix of their own.
"""
from __future__ import annotations

import logging
import math
import sys

ROOT = "app"


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


def duration(seconds: float) -> str:
    """How long, for people: 1h02m, 3m07s."""
    if not math.isfinite(seconds):
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
