"""Files on the volume written whole: a reader (TensorBoard, eval, `report`, a person on the host)
sees the old file or the new one, never half of either, even when the writer is killed midway."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from app.volume import layout


def write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Calls write(temporary path) to write the whole file beside `path`, then puts it in place
    in one rename. A temporary file that a failed write leaves is removed."""
    path = Path(path)
    # Not mkstemp: its files are private (0600), and people read these from the host too.
    temporary = str(path.with_name(f"{layout.TEMPORARY_PREFIX}{path.name}.{os.getpid()}.tmp"))
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))
