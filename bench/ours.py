"""Our trainer as its loop runs it, for the benchmarks that time it: `app.train.Trainer`, its
tf.data pipeline, and its calls: summary steps alone (`train_step`), the other steps several to a
call (`train_steps`), sized and paced by the loop's own rule (app/train/call_size.py: on a job of
several workers, the pace agreed over the job). Summaries stay every
runtime.summary_every_steps here: the benchmarks time them at that cadence, not spaced by their
cost as the trainer's loop spaces them. (The loop around the calls also logs and checkpoints at
its cadence: well under 1% of the time.)"""
from __future__ import annotations

import dataclasses
import time

import tensorflow as tf

from app.train.call_size import CallSizes
from app.train.trainer import Trainer


@dataclasses.dataclass
class Call:
    summary: bool   # a summary step (always alone)
    steps: int
    seconds: float


class OurTrainer:
    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.config = trainer.config
        self.batches = iter(trainer.dataset_from(0))
        self.step = 0
        self.call_sizes = CallSizes(self.config, trainer.strategy)

    def run(self, steps: int) -> list[Call]:
        """Runs `steps` steps as the trainer's loop does; returns each call and its time (the
        device finished: its loss read back)."""
        calls = []
        end = self.step + steps
        with self.trainer.writer.as_default():
            while self.step < end:
                calls.append(self._call(end))
        return calls

    def run_for(self, seconds: float) -> float:
        """Runs for about `seconds`; returns images per second."""
        started, steps = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            steps += sum(call.steps for call in self.run(100))
        return steps * self.trainer.global_batch_size / (time.perf_counter() - started)

    def _call(self, end: int) -> Call:
        started = time.perf_counter()
        summary = self.call_sizes.summary_due(self.step)
        steps = min(self.call_sizes.steps(self.step), end - self.step)
        if steps == 1:
            images, labels = next(self.batches)
            loss = self.trainer.train_step(images, labels, write_summaries=summary)
        else:
            loss = self.trainer.train_steps(self.batches, tf.constant(steps))
        returned = time.perf_counter() - started  # what the loop's pace is timed by
        loss.numpy()
        seconds = time.perf_counter() - started
        if not summary:
            self.call_sizes.timed(steps, returned)
        self.step += steps
        return Call(summary, steps, seconds)
