"""Eval: a separate program that only reads checkpoints, as in the tutorial.

Every `eval.interval_secs` it looks at train_dir's `checkpoint` state file and evaluates each
checkpoint it has not evaluated yet, oldest first: it restores the moving-average weights (or the
raw ones), runs exactly `eval.num_examples` test images once each, as the recipe has them seen
(app/recipes/: centrally cropped to the size it trains on; the fast recipe also averages in each
image's mirror image), and records precision @ 1 and the mean cross entropy at the checkpoint's
global step, in TensorBoard (train_dir/eval) and as one JSON line in train_dir/eval/results.jsonl.
Those lines are also its memory: after a restart it goes on from the last one. Once it has
evaluated the checkpoint at train.max_steps it exits 0.

Each evaluation also shows where the errors are: a confusion matrix, precision and recall per class,
and a PR curve per class, all from the same pass over the test images. Every
`eval.projector_every_evals`-th evaluation (and always the one at train.max_steps) it places a
fixed sample of test images in the Projector (app/projector.py), and whenever an evaluation is the
best so far it exports that model as a SavedModel (app/export.py).

The trainer rotates old checkpoints away while eval may be reading one; such a checkpoint is
skipped, and eval moves on to the newest. Eval's curves only go forward: a checkpoint older than
the newest evaluated one (left behind while eval was away) is passed over, and at every start eval
marks the step after its last recorded result as a new session, so that TensorBoard drops what an
evaluation cut short by a kill had written already. A full disk is waited out
(app/checkpoints.py): eval says so once, keeps what it has, and records the evaluation as soon as
there is room again.
"""
from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from app import checkpoints, confusion, data, devices, export, projector, recipes, summaries
from app.averages import MovingAverages
from app.exit_codes import ExitCode
from app.results import RESULTS_FILE, append_result, read_results

log = logging.getLogger(__name__)


class Evaluator:
    def __init__(self, config):
        self.config = config
        self.train_dir = Path(config.paths.train_dir)
        self.eval_dir = self.train_dir / "eval"
        evaluation = config.eval
        gpus = devices.configure(threads=evaluation.threads, device=evaluation.device,
                                 gpu_memory_limit_mb=evaluation.gpu_memory_limit_mb,
                                 config_key="eval.device")
        log.info(f"evaluating on {devices.describe(gpus)}, {evaluation.threads or 'all'} "
                 f"thread(s) at niceness {os.getpriority(os.PRIO_PROCESS, 0)}")
        recipe = recipes.for_config(config)
        self.model = recipe.build_model()
        self.input_size = recipe.input_size
        self.embedding_layer = recipe.embedding_layer
        self.classifier = export.Classifier(recipes.logits_model(self.model), recipe.input_size,
                                            recipe.test_time_flips)

        batches = data.prepare(config.data, config.paths.data_dir)
        images, labels = data.load_split(batches, "test")
        self.dataset = data.eval_dataset(images, labels, evaluation.num_examples,
                                         evaluation.batch_size, size=self.input_size)
        self.num_examples = evaluation.num_examples
        # The Projector's sample: the first images of the test set, the same ones every time.
        self.projector_images = images[:evaluation.projector_examples]
        self.projector_labels = labels[:evaluation.projector_examples]
        self.averages = MovingAverages(self.model.trainable_variables, decay=0.0)
        self.step = tf.Variable(0, dtype=tf.int64)
        self.checkpoint = tf.train.Checkpoint(step=self.step, model=self.model,
                                              averages=self.averages)
        earlier_results = read_results(self.eval_dir)
        self.evaluated_steps = {result["step"] for result in earlier_results}
        self.evaluations_done = len(earlier_results)
        self.skipped = 0
        self.passed_over: set[int] = set()  # older than the newest evaluated: said once each
        self.writer = None
        self._with_room_on_disk(lambda: self._open_writer(self._next_step_to_record()),
                                "open its event file")
        if evaluation.export_best:
            export.recover(self.train_dir)

    def _next_step_to_record(self) -> int:
        return max(self.evaluated_steps, default=-1) + 1

    def _open_writer(self, session_start: int) -> None:
        """A new event file, marked as a session that starts at `session_start`: TensorBoard
        drops whatever an earlier eval wrote from that step on without recording its result."""
        self.eval_dir.mkdir(parents=True, exist_ok=True)
        writer = tf.summary.create_file_writer(str(self.eval_dir))
        with writer.as_default():
            summaries.mark_session_start(session_start)
        writer.flush()
        self.writer = writer

    def _with_room_on_disk(self, write, what: str):
        return checkpoints.with_room_on_disk(
            write, self.eval_dir, what,
            meanwhile="Eval waits, keeping everything it has recorded, and goes on as soon as "
                      "space is freed there")

    @tf.function
    def _classify_batch(self, images, labels):
        logits = tf.cast(self.classifier.logits(images), tf.float32)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tf.argmax(logits, 1, output_type=tf.int32), tf.nn.softmax(logits), loss

    @tf.function(input_signature=[tf.TensorSpec([None, data.IMAGE_SIZE, data.IMAGE_SIZE,
                                                 data.CHANNELS], tf.uint8)])
    def _embed_batch(self, images):
        standardized = data.eval_images(images, self.input_size)
        embeddings = self.model(standardized, training=False)[recipes.EMBEDDING]
        # Predicted as eval counts (with the fast recipe's mirror images), so that the
        # projector's `correct` column agrees with precision @ 1.
        predictions = tf.argmax(self.classifier.logits(standardized), 1, output_type=tf.int32)
        return embeddings, predictions

    def _classify_test_images(self):
        """One pass over the eval set: the labels, predicted class ids and softmax probabilities
        (one row per image), and the summed cross entropy."""
        labels, predictions, probabilities, loss_sum = [], [], [], 0.0
        for images, batch_labels in self.dataset:
            batch_predictions, batch_probabilities, batch_loss = self._classify_batch(
                images, batch_labels)
            labels.append(batch_labels.numpy())
            predictions.append(batch_predictions.numpy())
            probabilities.append(batch_probabilities.numpy())
            loss_sum += float(batch_loss)
        return (np.concatenate(labels), np.concatenate(predictions),
                np.concatenate(probabilities), loss_sum)

    def evaluate(self, checkpoint_path: str) -> dict:
        """Restores one checkpoint and measures it. Raises a tf.errors.OpError (NotFoundError, or
        a plain OpError for a missing data file) when the checkpoint was rotated away before or
        while it was read."""
        self.checkpoint.read(checkpoint_path).expect_partial()
        if self.config.eval.use_moving_averages:
            self.averages.copy_to_variables()
        labels, predictions, probabilities, loss_sum = self._classify_test_images()
        step = int(self.step.numpy())
        correct = int(np.sum(predictions == labels))
        result = {
            "step": step,
            "precision_at_1": correct / self.num_examples,
            "loss": loss_sum / self.num_examples,
            "num_examples": self.num_examples,
            "checkpoint": Path(checkpoint_path).name,
            "weights": "moving_averages" if self.config.eval.use_moving_averages else "raw",
            "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
        }
        self._with_room_on_disk(lambda: self._write_events(result, labels, predictions,
                                                           probabilities),
                                f"record the evaluation of step {step}")
        if self._projector_due(step):
            self._write_projector(step)
        # Exported before the result is recorded: should eval die in between, it evaluates this
        # checkpoint again after a restart and finds the export already there.
        if self.config.eval.export_best:
            self._export_if_best(result)
        self._with_room_on_disk(lambda: append_result(self.eval_dir, result),
                                f"record the result of step {step} in {RESULTS_FILE}")
        self.evaluated_steps.add(step)
        self.evaluations_done += 1
        log.info(f"precision @ 1 = {result['precision_at_1']:.3f} (step {step}; "
                 f"loss {result['loss']:.3f}; {self.num_examples} examples)")
        return result

    def _write_events(self, result: dict, labels, predictions, probabilities) -> None:
        """The evaluation's events. Should a write fail (a full disk), the event file may end in
        half an event: the next attempt writes to a new file that starts a session at this step,
        which drops what of this evaluation the failed attempt had written."""
        step = result["step"]
        if self.writer is None:
            self._open_writer(session_start=step)
        matrix = confusion.count(labels, predictions, data.NUM_CLASSES)
        try:
            with self.writer.as_default():
                summaries.write_evaluation(step, result["precision_at_1"], result["loss"])
                summaries.write_class_breakdown(
                    step, data.CLASS_NAMES, confusion.precision_by_class(matrix),
                    confusion.recall_by_class(matrix), confusion.draw(matrix, data.CLASS_NAMES))
                summaries.write_pr_curves(step, data.CLASS_NAMES, labels, probabilities)
            self.writer.flush()
        except (tf.errors.OpError, OSError):
            self.writer = None  # abandoned, not closed: closing would try to flush it again
            raise

    def _projector_due(self, step: int) -> bool:
        if not len(self.projector_images):
            return False
        every = self.config.eval.projector_every_evals
        return self.evaluations_done % every == 0 or step >= self.config.train.max_steps

    def _write_projector(self, step: int) -> None:
        batch_size = self.config.eval.batch_size
        embedded = [self._embed_batch(self.projector_images[start:start + batch_size])
                    for start in range(0, len(self.projector_images), batch_size)]
        embeddings = np.concatenate([batch[0].numpy() for batch in embedded])
        predictions = np.concatenate([batch[1].numpy() for batch in embedded])
        try:
            self._with_room_on_disk(
                lambda: projector.write(self.eval_dir, step, self.embedding_layer,
                                        self.projector_images, self.projector_labels,
                                        embeddings, predictions, data.CLASS_NAMES),
                f"write the projector's files for step {step}")
        except (OSError, tf.errors.OpError) as error:  # the projector is a view; eval goes on
            log.info(f"could not write the projector's files for step {step}: {error}")

    def _export_if_best(self, result: dict) -> None:
        if not export.improves_on_export(result, self.train_dir):
            return
        try:
            path = self._with_room_on_disk(
                lambda: export.export(self.classifier, result, self.train_dir),
                f"export step {result['step']}")
        except (OSError, tf.errors.OpError) as error:
            log.info(f"could not export step {result['step']}: {error}; the previous export "
                     f"stays")
            return
        log.info(f"exported step {result['step']} (the best so far, precision @ 1 = "
                 f"{result['precision_at_1']:.3f}) to {path}")

    def evaluate_pending(self) -> None:
        """Evaluates every checkpoint on disk not evaluated yet, oldest first."""
        for path in self._pending_checkpoints():
            try:
                self.evaluate(path)
            except tf.errors.OpError as error:
                self.skipped += 1
                log.info(f"skipped {Path(path).name}: gone or incomplete while being read "
                         f"({error.message.strip()}); moving on")

    def evaluate_newest(self) -> dict | None:
        """--once: the newest checkpoint, retried with the then-newest if rotation takes it."""
        for _ in range(3):
            newest = checkpoints.newest(self.train_dir)
            if newest is None:
                return None
            try:
                return self.evaluate(str(newest))
            except tf.errors.OpError as error:
                self.skipped += 1
                log.info(f"skipped {newest.name}: {error.message.strip()}")
        return None

    def _pending_checkpoints(self) -> list[str]:
        """The listed checkpoints newer than the newest evaluated one, oldest first."""
        newest_evaluated = max(self.evaluated_steps, default=-1)
        pending = []
        for path in checkpoints.listed(self.train_dir):
            step = checkpoints.step_of(path)
            if step > newest_evaluated:
                pending.append(str(path))
            elif step not in self.evaluated_steps and step not in self.passed_over:
                self.passed_over.add(step)
                log.info(f"passed over {path.name}: older than the newest evaluated checkpoint "
                         f"(step {newest_evaluated}), and the eval curves only go forward")
        return pending

    def watch(self) -> int:
        max_steps = self.config.train.max_steps
        log.info(f"watching {self.train_dir} for checkpoints every "
                 f"{self.config.eval.interval_secs:g} s")
        while max(self.evaluated_steps, default=-1) < max_steps:
            self.evaluate_pending()
            if max(self.evaluated_steps, default=-1) >= max_steps:
                break
            time.sleep(self.config.eval.interval_secs)
        log.info(f"evaluated the checkpoint at train.max_steps = {max_steps}; done")
        return ExitCode.DONE


def main(config, once: bool = False) -> int:
    # A stop (supervisord's SIGTERM) ends eval through a normal exit, which removes its temp
    # folder; eval has nothing else to finish.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(ExitCode.DONE))
    try:
        evaluator = Evaluator(config)
    except devices.GpusNotSeen as error:
        log.error(f"error: {error}")
        return error.exit_code
    if once:
        if evaluator.evaluate_newest() is None:
            log.error(f"error: no readable checkpoint in {evaluator.train_dir}")
            return ExitCode.BAD_INPUT
        return ExitCode.DONE
    return evaluator.watch()
