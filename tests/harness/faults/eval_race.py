"""Eval racing the trainer's rotation: a checkpoint every step, two kept, and eval looking again the
moment it is done (eval.every_secs is only its pause when idle). Behind the trainer, eval picks the
newest waiting checkpoint, and even that one is now and then rotated away before or while it
reads it: tests/faults checks that eval skips it and goes on, never crashes. The race is timed from eval's
first evaluation: eval runs at niceness 19, so on a busy machine its start alone can outlast it."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.faults.stack_log import StackLog
from tests.harness.native_stack import NativeStack, small_config


@dataclasses.dataclass
class EvalRace:
    race_secs: float
    checkpoints_written: int     # while racing
    checkpoints_evaluated: int   # eval's "precision @ 1" lines, the first before the race
    checkpoints_skipped: int     # eval's "skipped model.ckpt-N" lines
    eval_crashes: list[str]      # supervisord's lines of unexpected exits
    trainer_crashes: list[str]
    eval_tracebacks: list[str]   # each traceback eval printed, whole

    def figures(self) -> dict:
        return {"race_secs": round(self.race_secs, 1),
                "checkpoints_written": self.checkpoints_written,
                "checkpoints_evaluated": self.checkpoints_evaluated,
                "checkpoints_skipped": self.checkpoints_skipped,
                "eval_crashes": len(self.eval_crashes)}


def eval_race(folder: Path, seconds: float) -> EvalRace:
    config = small_config(train={"max_steps": 1_000_000},
                          runtime={"checkpoint_every_steps": 1, "checkpoint_every_secs": None,
                                   "keep_checkpoints": 2,
                                   "summary_every_steps": 1000},
                          eval={"every_secs": 1})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    stack.start()
    try:
        log.wait(lambda: log.matching(log_lines.SAVED), 180, "a first checkpoint")
        log.wait(lambda: log.matching(log_lines.PRECISION), 300, "eval's first evaluation")
        started = time.monotonic()
        saves_before = len(log.matching(log_lines.SAVED))
        time.sleep(seconds)
        raced = time.monotonic() - started
        saves = len(log.matching(log_lines.SAVED)) - saves_before
    finally:
        stack.stop()
    log.update()
    return EvalRace(
        race_secs=raced, checkpoints_written=saves,
        checkpoints_evaluated=len(log.matching(log_lines.PRECISION)),
        checkpoints_skipped=len(log.matching(log_lines.SKIPPED)),
        eval_crashes=log.unexpected_exits("eval"), trainer_crashes=log.unexpected_exits("train"),
        eval_tracebacks=log.tracebacks("eval"))
