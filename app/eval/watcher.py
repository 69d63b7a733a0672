"""Eval: a separate program that only reads checkpoints, as in the tutorial, for every run of the
volume.

It looks for runs (folders of train_dir with a `checkpoint` state file, app/volume/runs.py) and
evaluates their new checkpoints (app/eval/run_evaluator.py): round by round, one checkpoint of each
run that has one waiting, the run whose oldest waiting checkpoint is oldest first, so that a run
saving often does not keep the others waiting. While there is training to watch (a trainer on a
run, a run short of its max_steps, or no run yet) it looks again every
LOOK_WHILE_TRAINING_SECS; only when idle does it wait `eval.every_secs` between looks, and a
trainer starting meanwhile ends that wait (app/eval/pace.py says why). When a run's trainer is
ahead, several checkpoints waiting, eval evaluates the newest and passes over the older ones,
saying so in one line; a run nobody trains is caught up in full, oldest first. Either way a run's
final checkpoint, the newest it will ever have, is evaluated before the run is let go of.

Each run is evaluated with the model its trainer built (the recipe in its run.yaml) on the same
test images, the first `eval.num_examples` of the test set, so that runs compare fairly. It keeps
watching as long as it runs: a run started later (a second trainer on the same volume) is picked
up at the next look.

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
from app.eval.pace import LOOK_WHILE_TRAINING_SECS, pause_after_look, to_evaluate

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
        every_secs = self.config.eval.every_secs
        log.info(f"watching {self.train_dir} for the checkpoints of every run: every "
                 f"{min(LOOK_WHILE_TRAINING_SECS, every_secs):g} s while there is training to "
                 f"watch, every {every_secs:g} s (eval.every_secs) when idle")
        said_idle = False
        while True:
            if self.evaluate_round():
                said_idle = False
                continue
            self._let_go_of_done_runs()
            training = runs.any_training(self.train_dir)
            if not self.runs and self.let_go and not training:
                done = ", ".join(sorted(self.let_go))
                if until_done:
                    log.info(f"every run is evaluated up to its max_steps ({done}); done")
                    return ExitCode.DONE
                if not said_idle:
                    log.info(f"every run is evaluated up to its max_steps ({done}); watching "
                             f"for new checkpoints")
                    said_idle = True
            pause = pause_after_look(len(self.runs), len(self.let_go), training, every_secs)
            self._wait(pause, until_a_trainer_starts=pause > LOOK_WHILE_TRAINING_SECS)

    def _wait(self, seconds: float, until_a_trainer_starts: bool) -> None:
        """Sleeps `seconds`; an idle wait ends early, within LOOK_WHILE_TRAINING_SECS, when a
        trainer takes a run's lock, which at a GPU's pace may otherwise be done before eval
        looks again."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, LOOK_WHILE_TRAINING_SECS) if until_a_trainer_starts else left)
            if until_a_trainer_starts and runs.any_training(self.train_dir):
                return

    def evaluate_round(self) -> int:
        """One checkpoint of each run that has some waiting, the run with the oldest first (the
        newest of its waiting ones while its trainer trains); returns how many it evaluated."""
        waiting = []
        for run in runs.with_checkpoints(self.train_dir):
            if run in self.let_go and not self._has_newer_than(run, self.let_go[run]):
                continue
            self.let_go.pop(run, None)
            pending = self.run_evaluation(run).pending()
            if pending:
                waiting.append((_written_at(pending[0]), run, pending))
        for _, run, pending in sorted(waiting, key=lambda entry: entry[:2]):
            evaluation = self.runs[run]
            path, older = to_evaluate(pending, runs.is_training(evaluation.run_folder))
            evaluation.pass_over_waiting(older)
            evaluation.evaluate_if_there(path)
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
