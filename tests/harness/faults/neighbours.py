"""kill -9 TensorBoard, then eval, while the trainer trains: how soon supervisord brought each
back and how far the trainer got meanwhile. tests/faults checks that each came back, and that the
trainer neither restarted nor stalled."""
from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.faults.stack_log import StackLog, program_pid
from tests.harness.native_stack import NativeStack, small_config
from tests.harness.waiting import wait_until


@dataclasses.dataclass
class Neighbours:
    back_after_secs: dict[str, float]     # program -> from its kill to working again
    steps_while_down: dict[str, int]      # program -> steps the trainer trained meanwhile
    trainer_restarted: bool               # the trainer's life was not the same at the end
    trainer_exits: list[str]              # supervisord's lines of its unexpected exits

    def figures(self) -> dict:
        return {**{f"{program}_back_after_secs": round(secs, 1)
                   for program, secs in self.back_after_secs.items()},
                **{f"steps_trained_while_{program}_was_down": steps
                   for program, steps in self.steps_while_down.items()},
                "trainer_restarted": self.trainer_restarted}


def neighbours(folder: Path) -> Neighbours:
    config = small_config(train={"max_steps": 1_000_000},
                          runtime={"checkpoint_every_steps": 50, "log_every_secs": 0.001})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    seen = Neighbours({}, {}, False, [])
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
            seen.back_after_secs[program] = time.monotonic() - killed_at
            log.update()
            seen.steps_while_down[program] = trainer.last_step - step_before
        seen.trainer_restarted = log.current("train") is not trainer
        seen.trainer_exits = log.unexpected_exits("train")
    finally:
        stack.stop()
    return seen
