"""When the trainer writes what: a progress line, a summary step, a checkpoint. Each rule is told
once, as a function of the step and of measured times, so that it holds at any pace: a GPU's
0.3 ms step as well as a CPU's 300 ms one (cadences counted in steps alone print hundreds of lines
a second on the first and one every few minutes on the second).

    progress line  after the first call (the run is going), every runtime.log_every_secs, and at
                   the end (max_steps or a stop); by steps instead where a config still sets
                   runtime.log_every_steps. A line never ends a call.
    summary step   on a grid of summary_every_steps x 2^k: k grows (at most doubling the spacing
                   at each summary) until the summaries' measured extra cost is at most
                   runtime.summary_max_share of the training time, and falls again when they get
                   cheaper; and the last step, so that every curve reaches the end of the run.
    checkpoint     every checkpoint_every_steps (no sooner than checkpoint_min_gap_secs after the
                   last save) and/or every checkpoint_every_secs; the trainer also saves at the
                   end and on a stop.

The numbers a summary's spacing is chosen from are agreed over a job of several workers
(app/train/call_size.py), so that every worker runs the same summary steps.
"""
from __future__ import annotations

import dataclasses

# A bound on the doubling, far beyond any run (summary_every_steps x 2^40 steps).
MAX_DOUBLINGS = 40


def progress_line_due(runtime, step: int, max_steps: int, last_line_step: int | None,
                      secs_since_line: float) -> bool:
    """Whether the trainer prints a progress line now, after a call that reached `step`;
    `last_line_step` is None until this process printed one."""
    if last_line_step is None or step >= max_steps:
        return True
    if runtime.log_every_steps is not None:  # the old cadence: when a call crossed a multiple
        return step // runtime.log_every_steps > last_line_step // runtime.log_every_steps
    return secs_since_line >= runtime.log_every_secs


def summary_spacing(runtime, current: int, extra_secs: float, secs_per_step: float) -> int:
    """The spacing of summary steps after one that cost `extra_secs` more than a plain step of
    `secs_per_step`: the smallest summary_every_steps x 2^k at which the summaries take at most
    summary_max_share of the time, but at most twice `current` (one slow summary step, a noisy
    neighbour's doing, must not put off every other for the rest of the run)."""
    every, share = runtime.summary_every_steps, runtime.summary_max_share
    if share is None or secs_per_step <= 0:
        return every
    needed = every
    for _ in range(MAX_DOUBLINGS):
        if extra_secs <= share * needed * secs_per_step:
            break
        needed *= 2
    return min(needed, 2 * current)


def summary_due(step: int, spacing: int, max_steps: int) -> bool:
    """Whether the step that starts at `step` writes summaries: on the spacing's grid, and the
    last step, so that every curve reaches the end of the run."""
    return step % spacing == 0 or step + 1 == max_steps


def checkpoint_due(runtime, step: int, secs_since_save: float) -> bool:
    """Whether a call that reached `step` is followed by a save (the end's and a stop's aside)."""
    by_time = (runtime.checkpoint_every_secs is not None
               and secs_since_save >= runtime.checkpoint_every_secs)
    by_steps = (runtime.checkpoint_every_steps is not None
                and step % runtime.checkpoint_every_steps == 0
                and (runtime.checkpoint_min_gap_secs is None
                     or secs_since_save >= runtime.checkpoint_min_gap_secs))
    return by_time or by_steps


@dataclasses.dataclass
class SummaryShare:
    """What the summary steps cost, as the progress line tells it: their measured extra time (over
    a plain step each) against the training loop's time; None before one was measured."""
    extra_secs: float | None = None
    loop_secs: float = 0.0

    def add(self, extra_secs: float | None) -> None:
        if extra_secs is not None:
            self.extra_secs = (self.extra_secs or 0.0) + extra_secs

    @property
    def share(self) -> float | None:
        if self.extra_secs is None or self.loop_secs <= 0:
            return None
        return self.extra_secs / self.loop_secs
