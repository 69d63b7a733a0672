"""How a program's process ends: as Python ends it, or at once, without the interpreter's teardown.

Deleting the trainer's input iterator waits for tf.data's autotuning thread, whose sleep grows with
the run towards a minute (TF 2.21: 40 s after 40 s of training), so a normal exit would overrun
`docker stop`'s 10 s grace after every SIGTERM and hold the GPU after max_steps. So the trainer
hands itself over here, which keeps it from ever being deleted, and `python -m app` ends the
process with os._exit once the outcome is logged: its checkpoint is on disk by then, its event
file closed; only our output needs flushing and the temp folder removing (atexit would, were it
not for os._exit).
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn

from app.runtime import temp_folder

# What must outlive the program's last line: held, never deleted, until os._exit.
_kept_until_the_end: list[object] = []


def without_teardown(holder: object) -> None:
    """Ends this process at once when the program is done, `holder` never deleted."""
    _kept_until_the_end.append(holder)


def end(exit_code: int) -> NoReturn:
    if not _kept_until_the_end:
        sys.exit(exit_code)
    temp_folder.remove()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
