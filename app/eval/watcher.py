"""Eval: a separate program that only reads checkpoints, as in the tutorial, for every run of the
volume.

Every `eval.every_secs` it looks for runs (folders of train_dir with a `checkpoint` state file,
app/volume/runs.py) and evaluates their new checkpoints (app/eval/run_evaluator.py): round by round, one
checkpoint of each run that has one waiting, the run whose oldest waiting checkpoint is oldest
first, so that a run saving often does not keep the others waiting. Each run is evaluated with the
model its trainer built (the recipe in its run.yaml) on the same test images, the first
`eval.num_examples` of the test set, so that runs compare fairly. It keeps watching as long as it
runs: a run started later (a second trainer on the same volume) is picked up at the next look.

A run that is done (its checkpoint at its max_steps evaluated, no trainer on it) is let go of,
its model freed, so that eval's memory does not grow with the runs; should its trainer go on,
eval picks it up again. Each evaluation costs the same however many runs there are: its pass over
the test images, its events, a projector write every `projector.every_evals`-th evaluation
and an export when it is the run's best; nothing is done across runs.

`eval --once` evaluates the newest checkpoint of paths.run and exits; `eval --until-done` exits
once every run it has seen is evaluated up to its max_steps and none is training (for scripts).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

from app import compat
from app.volume import checkpoints, runs
from app.config import config_of_run
from app.data import cifar10, pipeline
from app.runtime import devices
from app.exit_codes import AppError, ExitCode
from app.volume.results import read_results
from app.eval.run_evaluator import RunEvaluation

log = logging.getLogger(__name__)


class TestSet:
    """The test images, read once for every run: the batches of each input size, and the
    Projector's sample (the first images, the same ones every time)."""

    def __init__(self, config):
        evaluation = config.eval
        batches = cifar10.prepare(config.data, config.paths.data_dir)
        self.images, self.labels = cifar10.load_split(batches, "test")
        self.num_examples = evaluation.num_examples
        self.batch_size = evaluation.batch_size
        self.projector_images = self.images[:config.projector.examples]
        self.projector_labels = self.labels[:config.projector.examples]
        self._datasets = {}

    def dataset(self, input_size: int):
        if input_size not in self._datasets:
            self._datasets[input_size] = pipeline.eval_dataset(
                self.images, self.labels, self.num_examples, self.batch_size, size=input_size)
        return self._datasets[input_size]


class Evaluator:
    def __init__(self, config):
        self.config = config
        evaluation = config.eval
        gpus = devices.configure(threads=evaluation.threads, device=evaluation.device,
                                 gpu_memory_limit_mb=evaluation.gpu_memory_limit_mb,
                                 config_key="eval.device")
        threads = "all" if evaluation.threads == "auto" else evaluation.threads
        log.info(f"evaluating on {devices.describe(gpus)}, {threads} "
                 f"thread(s) at niceness {os.getpriority(os.PRIO_PROCESS, 0)}")
        self.train_dir = config.paths.train_dir
        self.test_set = TestSet(config)
        self.runs: dict[str, RunEvaluation] = {}
        self.let_go: dict[str, int] = {}  # done runs set aside: their newest evaluated step

    def run_evaluation(self, run: str) -> RunEvaluation:
        if run not in self.runs:
            self.runs[run] = RunEvaluation(run, config_of_run(self.config, run), self.test_set)
        return self.runs[run]

    def watch(self, until_done: bool = False) -> int:
        """Evaluates new checkpoints as they come, for as long as it runs; with `until_done`,
        until every run it has seen is evaluated up to its max_steps and none is training."""
        log.info(f"watching {self.train_dir} for the checkpoints of every run, every "
                 f"{self.config.eval.every_secs:g} s")
        said_idle = False
        while True:
            if self.evaluate_round():
                said_idle = False
                continue
            self._let_go_of_done_runs()
            if not self.runs and self.let_go:
                done = ", ".join(sorted(self.let_go))
                if until_done:
                    log.info(f"every run is evaluated up to its max_steps ({done}); done")
                    return ExitCode.DONE
                if not said_idle:
                    log.info(f"every run is evaluated up to its max_steps ({done}); watching "
                             f"for new checkpoints")
                    said_idle = True
            time.sleep(self.config.eval.every_secs)

    def evaluate_round(self) -> int:
        """One checkpoint of each run that has some waiting, the run with the oldest first;
        returns how many it evaluated."""
        waiting = []
        for run in runs.with_checkpoints(self.train_dir):
            if run in self.let_go and not self._has_newer_than(run, self.let_go[run]):
                continue
            self.let_go.pop(run, None)
            pending = self.run_evaluation(run).pending()
            if pending:
                waiting.append((_written_at(pending[0]), run, pending[0]))
        for _, run, path in sorted(waiting):
            self.runs[run].evaluate_if_there(path)
        return len(waiting)

    def _has_newer_than(self, run: str, step: int) -> bool:
        newest = checkpoints.newest(runs.folder(self.train_dir, run))
        return newest is not None and checkpoints.step_of(newest) > step

    def _let_go_of_done_runs(self) -> None:
        for run, evaluation in list(self.runs.items()):
            if evaluation.is_done() and not runs.is_training(evaluation.run_folder):
                evaluation.say(f"evaluated up to its max_steps ({evaluation.max_steps}); "
                               f"set aside until it has a newer checkpoint")
                self.let_go[run] = evaluation.newest_evaluated
                del self.runs[run]

    def evaluate_newest(self, run: str) -> dict | None:
        """--once: the newest checkpoint of `run`, retried with the then-newest if rotation
        takes it."""
        evaluation = self.run_evaluation(run)
        for _ in range(3):
            newest = checkpoints.newest(evaluation.run_folder)
            if newest is None:
                return None
            if checkpoints.step_of(newest) in evaluation.evaluated_steps:
                # Evaluated again, its step would repeat in the eval curves: its record stands.
                recorded = {r["step"]: r for r in read_results(evaluation.eval_dir)}
                result = recorded[checkpoints.step_of(newest)]
                evaluation.say(f"{newest.name} is evaluated already: precision @ 1 = "
                               f"{result['precision_at_1']:.3f}")
                return result
            if (result := evaluation.evaluate_if_there(newest)) is not None:
                return result
        return None


def _written_at(path) -> float:
    try:
        return os.stat(f"{path}.index").st_mtime
    except OSError:
        return 0.0


def main(config, once: bool = False, until_done: bool = False) -> int:
    # A stop (supervisord's SIGTERM) ends eval through a normal exit, which removes its temp
    # folder; eval has nothing else to finish.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(ExitCode.DONE))
    compat.adopt_old_layout(config.paths.train_dir, config.paths.run)
    evaluator = Evaluator(config)
    if once:
        run = config.paths.run
        if evaluator.evaluate_newest(run) is None:
            raise AppError(f"no readable checkpoint in {runs.folder(config.paths.train_dir, run)}")
        return ExitCode.DONE
    return evaluator.watch(until_done)
