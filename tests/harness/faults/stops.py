"""SIGTERM to supervisord, as `docker stop` sends it, at random moments: each time a checkpoint at
the step reached, written within docker's grace period, and nothing left running."""
from __future__ import annotations

import random
import time
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed
from tests.harness.container_runs import DOCKER_STOP_GRACE_SECS
from tests.harness.faults.outcome import Outcome
from tests.harness.faults.stack_log import StackLog
from tests.harness.native_stack import NativeStack, small_config


def graceful_stop(folder: Path, stops: int, within_secs: float = 10, seed: int = 0) -> Outcome:
    """SIGTERM to supervisord `stops` times, each run resuming the one before: every third stop
    while the trainer starts, the others at a random moment in its first `within_secs` of
    training. Each time the checkpoint must be at the step reached, written within docker's
    grace."""
    rng = random.Random(seed)
    # Far more steps than a run lives, and no checkpoint but the one the stop writes.
    config = small_config(train={"max_steps": 1_000_000},
                          runtime={"checkpoint_every_steps": 0, "checkpoint_every_secs": 0,
                                   "log_every_steps": 1, "summary_every_steps": 100})
    faults: list[str] = []
    stop_seconds = []
    kept = 0
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
        reached = trainer.reached if trainer.reached is not None else previous
        newest = newest_listed(stack.run_dir)
        stop_seconds.append(stopped["stopped_after"])
        what = f"stop {number + 1} ({when}, at step {reached})"
        if newest == reached:
            kept += 1
        else:
            faults.append(f"{what}: the newest checkpoint is {newest}, not the step reached")
        if stopped["stopped_after"] > DOCKER_STOP_GRACE_SECS:
            faults.append(f"{what}: took {stopped['stopped_after']:.1f} s, more than docker's "
                          f"{DOCKER_STOP_GRACE_SECS} s grace")
        if stopped["exit_code"] != ExitCode.DONE or stopped["left_running"]:
            faults.append(f"{what}: supervisord exited {stopped['exit_code']}, leaving "
                          f"{stopped['left_running'] or 'nothing'} running")
        if trainer.last_step is not None and not log.matching(log_lines.STOPPED_ON_REQUEST,
                                                              step=trainer.last_step):
            faults.append(f"{what}: the trainer did not say it stopped at step "
                          f"{trainer.last_step}")
        previous = newest
    return Outcome("graceful_stop", {
        "stops": stops,
        "checkpoint_at_step_reached": f"{kept}/{stops}",
        "slowest_stop_secs": round(max(stop_seconds), 2),
        "median_stop_secs": round(sorted(stop_seconds)[len(stop_seconds) // 2], 2),
        "grace_secs": DOCKER_STOP_GRACE_SECS,
    }, faults)
