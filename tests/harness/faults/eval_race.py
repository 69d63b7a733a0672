"""Eval racing the trainer's rotation: a checkpoint every step, two kept, and eval looking again the
moment it is done. The checkpoint eval picks is often rotated away before or while it reads it:
eval must skip it and go on, never crash."""
from __future__ import annotations

import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.faults.outcome import Outcome
from tests.harness.faults.stack_log import StackLog
from tests.harness.native_stack import NativeStack, small_config


def eval_race(folder: Path, seconds: float) -> Outcome:
    config = small_config(train={"max_steps": 1_000_000},
                          runtime={"checkpoint_every_steps": 1, "checkpoint_every_secs": 0,
                                   "keep_checkpoints": 2, "log_every_steps": 50,
                                   "summary_every_steps": 1000},
                          eval={"every_secs": 0})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    stack.start()
    try:
        log.wait(lambda: log.matching(log_lines.SAVED), 180, "a first checkpoint")
        log.wait(lambda: log.matching(log_lines.WATCHING), 120, "eval to start watching")
        started = time.monotonic()
        saves_before = len(log.matching(log_lines.SAVED))
        time.sleep(seconds)
        raced = time.monotonic() - started
        saves = len(log.matching(log_lines.SAVED)) - saves_before
    finally:
        stack.stop()
    log.update()
    evaluated = len(log.matching(log_lines.PRECISION))
    skipped = len(log.matching(log_lines.SKIPPED))
    faults = [f"eval crashed: {line}" for line in log.unexpected_exits("eval")]
    faults += [f"the trainer crashed: {line}" for line in log.unexpected_exits("train")]
    faults += [f"eval printed a traceback: {match.string}"
               for match in log.matching(log_lines.EVAL_TRACEBACK)]
    if not evaluated:
        faults.append("eval evaluated no checkpoint at all while the trainer rotated them")
    return Outcome("eval_race", {
        "race_secs": round(raced, 1),
        "checkpoints_written": saves,
        "checkpoints_evaluated": evaluated,
        "checkpoints_skipped": skipped,
        "eval_crashes": len(log.unexpected_exits("eval")),
    }, faults)
