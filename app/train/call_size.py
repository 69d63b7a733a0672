"""How many steps one call to TensorFlow runs (the trainer's `train_steps`), and the measured
figures that size it, told once: for the trainer's loop and for the benchmarks that time it.

A call runs up to the next step at which something is due (a summary step, which runs alone, a
checkpoint by steps, max_steps), at most runtime.steps_per_call, and at most as many steps as fit
in MAX_SECS_PER_CALL at the pace of the plain steps timed so far. A progress line never ends a
call: it is printed after the call that reaches its time.

On a job of several workers the figures are means over the job: each step is a collective
all-reduce, so a worker running more steps a call than another would wait for it forever, and a
worker that took another step for a summary step would run another graph. So the pace, and a
summary step's time, which the summaries' spacing is chosen from (app/train/cadence.py), are
agreed the same way.
"""
from __future__ import annotations

import tensorflow as tf

from app.train import cadence

# The longest a call of several steps may last. A stop request (docker stop's SIGTERM) is answered
# after the call in flight, then the checkpoint is saved: this keeps a stop near a second, well
# inside docker's 10 s grace. A call's own cost is a Python round trip (about a millisecond,
# bench/RESULTS.md section 10), so 1 s of steps makes it ~0.1% of the time. (A single step
# longer than this is one call of its own.)
MAX_SECS_PER_CALL = 1.0


class CallSizes:
    """The size of each call of one training loop, the pace that sizes them and the spacing of
    its summary steps."""

    def __init__(self, config, strategy: tf.distribute.Strategy, first_step: int | None = None):
        """`config`: the run's; `strategy`: the trainer's; `first_step`: where the loop starts,
        whose step writes summaries too, so that the curves of every start begin where it
        began (a resume, a run started from another run's checkpoint)."""
        self.config = config
        self.strategy = strategy
        self.first_step = first_step
        self.secs_per_step: float | None = None  # none before a call of plain steps is timed
        self.summary_spacing = config.runtime.summary_every_steps

    def summary_due(self, step: int) -> bool:
        """Whether the step that starts at `step` writes summaries (the same on every worker)."""
        return step == self.first_step or cadence.summary_due(
            step, self.summary_spacing, self.config.train.max_steps)

    def steps(self, step: int) -> int:
        """How many steps the call that starts at `step` runs: a summary step alone, plain steps
        as steps_to_run says at the agreed pace."""
        if self.summary_due(step):
            return 1
        return steps_to_run(self.config, step, self.secs_per_step, self.summary_spacing)

    def timed(self, steps: int, seconds: float) -> None:
        """Takes a call of `steps` plain steps that lasted `seconds` as the pace for the next
        calls: its own on one worker, the mean over the job on several. Every worker of a job
        must call it after the same calls (it is a collective)."""
        self.secs_per_step = self._agreed(seconds / steps)

    def timed_summary(self, seconds: float) -> float | None:
        """Takes a summary step that lasted `seconds` (the mean over the job) as what summaries
        cost, spaces the next ones by it, and returns its extra time over a plain step (None
        before a pace is timed). A collective too: every worker calls it after the same summary
        steps, which they agree on because they space them by the same figures."""
        seconds = self._agreed(seconds)
        if self.secs_per_step is None:
            return None
        extra = max(0.0, seconds - self.secs_per_step)
        self.summary_spacing = cadence.summary_spacing(
            self.config.runtime, self.summary_spacing, extra, self.secs_per_step)
        return extra

    def on_any_worker(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true if it is true on any worker of the job (a collective: every worker
        calls it after every call); the flags themselves on one machine."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return flags
        means = self._mean_over_workers(tf.constant([float(flag) for flag in flags]))
        return tuple(bool(mean > 0) for mean in means.numpy())

    def _agreed(self, value: float) -> float:
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return float(self._mean_over_workers(tf.constant(value, tf.float32)))
        return value

    @tf.function
    def _mean_over_workers(self, value):
        per_replica = self.strategy.run(tf.identity, args=(value,))
        return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)


def steps_to_run(config, step: int, secs_per_step: float | None,
                 summary_spacing: int | None = None) -> int:
    """How many plain steps the call that starts at `step` runs: up to the next step at which
    something is due (a summary step, which runs alone, on the grid of `summary_spacing`,
    runtime.summary_every_steps unless given; a checkpoint by steps; max_steps), at most
    runtime.steps_per_call (auto: no cap of its own), and at most as many as fit in
    MAX_SECS_PER_CALL at the pace measured so far (one, before there is a pace). Progress lines
    are not due at a step: they never end a call."""
    max_steps, runtime = config.train.max_steps, config.runtime
    spacing = summary_spacing or runtime.summary_every_steps
    due = [max_steps, _next_multiple(step, spacing), max_steps - 1]
    if runtime.checkpoint_every_steps is not None:
        due.append(_next_multiple(step, runtime.checkpoint_every_steps))
    steps = min(boundary for boundary in due if boundary > step) - step
    if runtime.steps_per_call != "auto":
        steps = min(steps, runtime.steps_per_call)
    fit = int(MAX_SECS_PER_CALL / secs_per_step) if secs_per_step else 1
    return max(1, min(steps, fit))


def _next_multiple(step: int, every: int) -> int:
    """The first multiple of `every` after `step`."""
    return (step // every + 1) * every
