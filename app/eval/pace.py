"""Eval's pace: how long it pauses between looks, and which waiting checkpoint of a run it
evaluates when it has fallen behind.

On a GPU a run of 100,000 steps ends in about a minute, with a checkpoint every second or so:
`eval.every_secs` (300 s, the tutorial's schedule) between looks would miss all of it. So while
there is training to watch, eval looks every LOOK_WHILE_TRAINING_SECS; `eval.every_secs` is its
pause only when it is idle. And when checkpoints of a run that is training pile up faster than
eval measures them, it takes the newest and passes over the older ones: the curve keeps up with
the trainer, and the trainer's rotation would take the older ones away meanwhile anyway. A run
that nobody trains keeps its checkpoints, so eval catches up on all of them, oldest first.
Nothing here deletes a checkpoint.
"""
from __future__ import annotations

from pathlib import Path

# A look lists the runs' state files and tries their trainer locks: a few file reads, nothing
# beside an evaluation (~0.3 s for 500 test images on 2 cores). At 0.5 s eval is busy whenever a
# checkpoint waits, even where a run saves every second (runtime.checkpoint_min_gap_secs set
# lower), yet it is no busy loop. (The documentation of eval.every_secs in app/config/schema.py
# and the README say "0.5 s" too.)
LOOK_WHILE_TRAINING_SECS = 0.5


def pause_after_look(runs_short_of_max_steps: int, runs_done: int, training: bool,
                     every_secs: float) -> float:
    """Seconds to wait after a look that found nothing to evaluate. There is training to watch
    while a trainer holds a run's lock, while a run is short of its max_steps, and before there
    is any run at all; only when every run is evaluated up to its max_steps and none is
    training is eval idle, and then it waits `every_secs`."""
    idle = runs_done > 0 and runs_short_of_max_steps == 0 and not training
    return every_secs if idle else min(LOOK_WHILE_TRAINING_SECS, every_secs)


def to_evaluate(waiting: list[Path], training: bool) -> tuple[Path, list[Path]]:
    """Of a run's waiting checkpoints (oldest first), the one to evaluate now and the older ones
    it passes over: the newest and all before it while the run's trainer trains, else the oldest
    and none (they stay: each is evaluated in turn)."""
    if training:
        return waiting[-1], waiting[:-1]
    return waiting[0], []
