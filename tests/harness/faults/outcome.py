"""What every fault scenario shares: the error of a scenario that could not go on, and how big a
run of them is. (What each one saw is a dataclass of its own module, with `figures()` for
bench.faults' table.)"""
from __future__ import annotations

import dataclasses


class ScenarioError(RuntimeError):
    """The scenario itself could not go on (its setup failed)."""


@dataclasses.dataclass(frozen=True)
class Size:
    kills: int          # crash_loop: kill -9s of the trainer
    stops: int          # graceful_stop: SIGTERMs to the stack
    stop_within_secs: float  # graceful_stop: the latest moment into training a stop comes
    race_secs: float    # eval_race: seconds of a checkpoint every step


FULL = Size(kills=20, stops=10, stop_within_secs=60, race_secs=60)
QUICK = Size(kills=3, stops=2, stop_within_secs=10, race_secs=20)
