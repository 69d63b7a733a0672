"""A temporary folder of the program's own, removed however the program ends.

TensorFlow's autograph writes the code it generates for every tf.function into the temp folder
and removes those files only when the interpreter exits normally. The trainer ends with os._exit
(app/runtime/process_end.py says why) and a program killed by a signal never gets that far: each
run left dozens of __autograph_generated_file*.py behind. So train and eval each work in a folder of their own,
which they remove when they end, and remove such folders of programs killed before them.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "cifar10-appliance-"


def use_own_folder(program: str) -> Path:
    """Makes a folder of this process's own the temp folder of Python and of TensorFlow."""
    system_temp = Path(tempfile.gettempdir())
    remove_abandoned(system_temp)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{program}-{os.getpid()}-", dir=system_temp))
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)
    atexit.register(remove, folder)
    return folder


def remove(folder: Path | None = None) -> None:
    shutil.rmtree(folder or tempfile.gettempdir(), ignore_errors=True)


def remove_abandoned(system_temp: Path) -> None:
    """Removes the folders of our programs that are gone (killed, so they could not)."""
    for folder in system_temp.glob(f"{PREFIX}*-*-*"):
        try:
            pid = int(folder.name[len(PREFIX):].split("-")[1])
            if folder.stat().st_uid != os.getuid():
                continue
        except (ValueError, IndexError, OSError):
            continue
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
