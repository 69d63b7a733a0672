"""A disk that fills up is waited out, not given up on: a program that exited would be restarted
by supervisord at once, again and again, while the disk stays full. Every write to the volume
goes through `with_room_on_disk`: the trainer's checkpoints, event files and run record, and eval's
event files, results, projector files and exports. What is held in memory meanwhile is kept.
"""
from __future__ import annotations

import errno
import logging
import shutil
import time
from pathlib import Path
from typing import Callable, TypeVar

from app.runtime.logs import duration

# Once a write failed for want of space, it is tried again as soon as this much was freed, and
# at least this often (in case space is freed elsewhere, on a quota).
DISK_ROOM_WORTH_A_TRY = 1 << 20
DISK_FULL_RETRY_SECS = 60

log = logging.getLogger(__name__)
Result = TypeVar("Result")


class StoppedWhileDiskFull(Exception):
    """A stop was requested while a write waited for room on a full disk."""


def with_room_on_disk(write: Callable[[], Result], folder: Path, what: str, meanwhile: str,
                      stop_requested: Callable[[], bool] = lambda: False) -> Result:
    """Returns write(). While that fails because the disk of `folder` is full, says so once
    (`what` could not be done; `meanwhile` says what happens in the meantime) and tries again as
    soon as space is freed, or every DISK_FULL_RETRY_SECS. Raises StoppedWhileDiskFull when
    stop_requested() turns true while it waits; any other error at once."""
    import tensorflow as tf

    waiting_since = None
    while True:
        try:
            result = write()
        except (tf.errors.OpError, OSError) as error:
            if not is_disk_full(error):
                raise
            if stop_requested():
                raise StoppedWhileDiskFull(
                    f"stopped while the disk of {folder} was full, unable to {what}") from None
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.info(f"disk full: cannot {what}: no space left in {folder}. {meanwhile}")
            _wait_for_room(folder, stop_requested)
            continue
        if waiting_since is not None:
            log.info(f"disk has room again after {duration(time.monotonic() - waiting_since)}: "
                     f"going on")
        return result


def is_disk_full(error: Exception) -> bool:
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    # TensorFlow's file system errors carry the OS's words, not its errno.
    message = getattr(error, "message", "")
    return "No space left on device" in message or "Disk quota exceeded" in message


def _wait_for_room(folder: Path, stop_requested: Callable[[], bool]) -> None:
    free_then = _free_bytes(folder)
    deadline = time.monotonic() + DISK_FULL_RETRY_SECS
    while (time.monotonic() < deadline and not stop_requested()
           and _free_bytes(folder) < free_then + DISK_ROOM_WORTH_A_TRY):
        time.sleep(0.5)


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0

