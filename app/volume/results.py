"""What eval has measured, on disk: a run's history of evaluations, one JSON line per
evaluation appended by eval to its results file (<run>/eval/results.jsonl, app/volume/layout.py).

A result is {"step", "precision_at_1", "loss", "num_examples", "checkpoint", "weights",
"evaluated_at"}. No TensorFlow here: `python -m app report` reads these in a moment.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from app.volume import layout


def read_results(eval_dir) -> list[dict]:
    """The evaluations recorded so far, in the order they were made."""
    path = Path(eval_dir) / layout.RESULTS_FILE
    if not path.exists():
        return []
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            results.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill; the next evaluation writes a whole one
    return results


def append_result(eval_dir, result: dict) -> None:
    """Appends one whole line, or nothing: a write that fails halfway (a full disk) is cut off
    again, so that the next line does not start after half of this one."""
    line = (json.dumps(result) + "\n").encode("utf-8")
    descriptor = os.open(Path(eval_dir) / layout.RESULTS_FILE,
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size_before = os.fstat(descriptor).st_size
        try:
            if os.write(descriptor, line) < len(line):
                raise OSError(errno.ENOSPC, "No space left on device (the line fitted in part)")
        except OSError:
            os.ftruncate(descriptor, size_before)
            raise
    finally:
        os.close(descriptor)


def history(eval_dir) -> list[dict]:
    """One result per step, in step order. Eval may go back to an older checkpoint after a
    restart, and `eval --once` may measure a step again: its newest result counts."""
    by_step = {result["step"]: result for result in read_results(eval_dir)}
    return [by_step[step] for step in sorted(by_step)]


def goodness(result: dict) -> tuple[float, float]:
    """What "better" means for the export and the report: a higher precision @ 1, and at equal
    precision a lower loss."""
    return result["precision_at_1"], -result["loss"]
