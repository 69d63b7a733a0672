"""How many steps one call to TensorFlow runs (the trainer's `train_steps`), told once: for the
trainer's loop and for the benchmarks that time it.

A call runs up to the next step at which something is due (a log line, a summary step, which runs
alone, a checkpoint, max_steps), at most runtime.steps_per_call, and at most as many steps as fit in
MAX_SECS_PER_CALL at the pace of the plain steps timed so far. On a job of several workers that
pace is the mean over the job: each step is a collective all-reduce, so a worker running more
steps a call than another would wait for it forever.
"""
from __future__ import annotations

import tensorflow as tf

# The longest a call of several steps may last. A stop request (docker stop's SIGTERM) is answered
# after the call in flight, then the checkpoint is saved: this keeps that well inside docker's
# 10 s and supervisord's 30 s grace. (A single step longer than this is one call of its own.)
MAX_SECS_PER_CALL = 2.0


class CallSizes:
    """The size of each call of one training loop, and the pace that sizes them."""

    def __init__(self, config, strategy: tf.distribute.Strategy):
        """`config`: the run's; `strategy`: the trainer's."""
        self.config = config
        self.strategy = strategy
        self.secs_per_step: float | None = None  # none before a call of plain steps is timed

    def steps(self, step: int) -> int:
        """How many steps the call that starts at `step` runs: a summary step alone, plain steps
        as steps_to_run says at the agreed pace."""
        if summary_due(self.config, step):
            return 1
        return steps_to_run(self.config, step, self.secs_per_step)

    def timed(self, steps: int, seconds: float) -> None:
        """Takes a call of `steps` plain steps that lasted `seconds` as the pace for the next
        calls: its own on one worker, the mean over the job on several. Every worker of a job
        must call it after the same calls (it is a collective)."""
        secs_per_step = seconds / steps
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            secs_per_step = float(self._mean_over_workers(tf.constant(secs_per_step, tf.float32)))
        self.secs_per_step = secs_per_step

    @tf.function
    def _mean_over_workers(self, value):
        per_replica = self.strategy.run(tf.identity, args=(value,))
        return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)


def summary_due(config, step: int) -> bool:
    """Whether the step that starts at `step` writes summaries: every
    runtime.summary_every_steps, and the last, so that every curve reaches the end of the run."""
    return (step % config.runtime.summary_every_steps == 0
            or step + 1 == config.train.max_steps)


def steps_to_run(config, step: int, secs_per_step: float | None) -> int:
    """How many plain steps the call that starts at `step` runs: up to the next step at which
    something is due (a log line, a summary step, which runs alone, a checkpoint, max_steps), at
    most runtime.steps_per_call (auto: no cap of its own), and at most as many as fit in
    MAX_SECS_PER_CALL at the pace measured so far (one, before there is a pace)."""
    max_steps, runtime = config.train.max_steps, config.runtime
    due = [max_steps, _next_multiple(step, runtime.log_every_steps),
           _next_multiple(step, runtime.summary_every_steps), max_steps - 1]
    if runtime.checkpoint_every_steps:
        due.append(_next_multiple(step, runtime.checkpoint_every_steps))
    steps = min(boundary for boundary in due if boundary > step) - step
    if runtime.steps_per_call != "auto":
        steps = min(steps, runtime.steps_per_call)
    fit = int(MAX_SECS_PER_CALL / secs_per_step) if secs_per_step else 1
    return max(1, min(steps, fit))


def _next_multiple(step: int, every: int) -> int:
    """The first multiple of `every` after `step`."""
    return (step // every + 1) * every
