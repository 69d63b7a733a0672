"""SIGTERM to supervisord, as `docker stop` sends it, at random moments: for each stop, the step
reached, the newest checkpoint after it, how long it took, how supervisord exited and what it left
running, and what the trainer said. tests/faults checks that each time a checkpoint at the step
reached was written within docker's grace period, and nothing was left running."""
from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed
from tests.harness.container_runs import DOCKER_STOP_GRACE_SECS
from tests.harness.faults.stack_log import StackLog
from tests.harness.native_stack import NativeStack, small_config


@dataclasses.dataclass
class Stop:
    when: str                     # "starting" or "training"
    reached: int | None           # the step the trainer had reached (or resumed from)
    newest_checkpoint: int | None  # after the stop
    stopped_after: float          # seconds from SIGTERM to supervisord's exit
    exit_code: int                # supervisord's
    left_running: list            # what was still running after it exited
    last_step: int | None         # the last step the trainer logged (None: it never trained)
    said_it_stopped: bool         # the trainer said "stopped at step <last_step> on request"

    def __str__(self) -> str:
        return f"stop ({self.when}, at step {self.reached})"


@dataclasses.dataclass
class GracefulStops:
    stops: list[Stop]

    def figures(self) -> dict:
        seconds = sorted(stop.stopped_after for stop in self.stops)
        kept = sum(stop.newest_checkpoint == stop.reached for stop in self.stops)
        return {
            "stops": len(self.stops),
            "checkpoint_at_step_reached": f"{kept}/{len(self.stops)}",
            "slowest_stop_secs": round(seconds[-1], 2),
            "median_stop_secs": round(seconds[len(seconds) // 2], 2),
            "grace_secs": DOCKER_STOP_GRACE_SECS,
        }


def graceful_stop(folder: Path, stops: int, within_secs: float = 10,
                  seed: int = 0) -> GracefulStops:
    """SIGTERM to supervisord `stops` times, each run resuming the one before: every third stop
    while the trainer starts, the others at a random moment in its first `within_secs` of
    training. Returns what each stop left."""
    rng = random.Random(seed)
    # Far more steps than a run lives, and no checkpoint but the one the stop writes.
    config = small_config(train={"max_steps": 1_000_000},
                          runtime={"checkpoint_every_steps": None, "checkpoint_every_secs": None,
                                   "log_every_secs": 0.001, "summary_every_steps": 100})
    seen: list[Stop] = []
    previous = None  # the newest checkpoint before this run
    for number in range(stops):
        stack = NativeStack(folder, config)
        log = StackLog(stack.log_file, from_the_end=True)
        stack.start()
        try:
            trainer = log.wait(lambda: log.current("train"), 120, "the trainer to start")
            if number % 3 == 0:
                when = "starting"
                time.sleep(rng.uniform(0.0, 6.0))
            else:
                when = "training"
                log.wait(lambda: trainer.last_step is not None, 180, "a first step")
                time.sleep(rng.uniform(0.0, within_secs))
            log.update()
        finally:
            stopped = stack.stop()
        log.update()
        seen.append(Stop(
            when=when, reached=trainer.reached if trainer.reached is not None else previous,
            newest_checkpoint=newest_listed(stack.run_dir),
            stopped_after=stopped["stopped_after"], exit_code=stopped["exit_code"],
            left_running=stopped["left_running"], last_step=trainer.last_step,
            said_it_stopped=trainer.last_step is not None and bool(log.matching(
                log_lines.STOPPED_ON_REQUEST, step=trainer.last_step))))
        previous = seen[-1].newest_checkpoint
    return GracefulStops(seen)
