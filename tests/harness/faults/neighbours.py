"""kill -9 TensorBoard, then eval, while the trainer trains: supervisord brings each back, and the
trainer neither restarts nor stalls."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.faults.outcome import Outcome
from tests.harness.faults.stack_log import StackLog, program_pid
from tests.harness.native_stack import NativeStack, small_config
from tests.harness.waiting import wait_until


def neighbours(folder: Path) -> Outcome:
    config = small_config(train={"max_steps": 1_000_000},
                          runtime={"checkpoint_every_steps": 50, "log_every_steps": 1})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    faults: list[str] = []
    figures = {}
    stack.start()
    try:
        log.wait(lambda: log.current("train") and log.current("train").last_step is not None,
                 180, "the trainer's first step")
        trainer = log.current("train")
        wait_until(stack.tensorboard_answers, 120, "TensorBoard to answer", interval=0.5)
        for program in ("tensorboard", "eval"):
            victim = log.current(program)
            evals_watching = len(log.matching(log_lines.WATCHING))
            step_before = trainer.last_step
            killed_at = time.monotonic()
            os.kill(program_pid(victim), signal.SIGKILL)
            log.wait(lambda: log.current(program) is not victim, 60,
                     f"supervisord to start {program} again")
            if program == "tensorboard":
                working = stack.tensorboard_answers
            else:  # a new eval says so once it is set up and looks for checkpoints
                def working():
                    return len(log.matching(log_lines.WATCHING)) > evals_watching
            wait_until(working, 120, f"{program} to work again", interval=0.2)
            figures[f"{program}_back_after_secs"] = round(time.monotonic() - killed_at, 1)
            log.update()
            figures[f"steps_trained_while_{program}_was_down"] = trainer.last_step - step_before
            if trainer.last_step <= step_before:
                faults.append(f"the trainer made no progress while {program} was restarted")
        if log.current("train") is not trainer:
            faults.append("the trainer was restarted too: " + "; ".join(
                log.unexpected_exits("train")))
    finally:
        stack.stop()
    return Outcome("neighbours", figures, faults)
