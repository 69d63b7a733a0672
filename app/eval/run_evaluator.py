"""One run's evaluation: its model as its trainer built it, its checkpoints measured one by one,
and everything recorded in the run's eval/ folder (TensorBoard's run `<run>/eval`).

For a checkpoint it restores the moving-average weights (or the raw ones), runs exactly
`eval.num_examples` test images once each, as the run's recipe has them seen (app/model/recipes/:
centrally cropped to the size it trains on; the fast recipe also averages in each image's mirror
image), and records precision @ 1 and the mean cross entropy at the checkpoint's global step: in
TensorBoard, and as one JSON line in eval/results.jsonl, which is also its memory across restarts.
The same pass gives a confusion matrix, precision and recall per class and a PR curve per class;
every `projector.every_evals`-th evaluation (and the one at the run's max_steps) places a
fixed sample of test images in the Projector (app/tensorboard/projector.py), and an evaluation that is the
run's best so far is exported (app/volume/exports.py).

The curves only go forward: a checkpoint older than the newest evaluated one is passed over, and
each start marks the step after the last recorded result as a new session, so that TensorBoard
drops what an evaluation cut short by a kill had written already. A full disk is waited out
(app/volume/disk_space.py): eval says so once, keeps what it has, and goes on when there is room.
"""
from __future__ import annotations

import datetime
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from app.volume import checkpoints, disk_space, exports, layout, runs
from app.eval import confusion
from app.data import cifar10, pipeline
from app.tensorboard import projector, summaries
from app.model import recipes
from app.model.evaluation_model import EvaluationModel
from app.volume.results import append_result, read_results

log = logging.getLogger(__name__)


class RunEvaluation:
    def __init__(self, run: str, config, test_set):
        """`config` is the run's: eval's own, with the train and recipe sections the run's
        trainer started with."""
        self.run = run
        self.config = config
        self.run_folder = runs.folder(config.paths.train_dir, run)
        self.eval_dir = runs.eval_folder(config.paths.train_dir, run)
        self.model = EvaluationModel(config)
        self.test_set = test_set
        earlier_results = read_results(self.eval_dir)
        self.evaluated_steps = {result["step"] for result in earlier_results}
        self.evaluations_done = len(earlier_results)
        self.skipped: set[int] = set()  # unreadable (rotated away while read): not tried again
        self.passed_over: set[int] = set()  # older than the newest evaluated: said once each
        self.writer = None
        self._with_room_on_disk(lambda: self._open_writer(self.newest_evaluated + 1),
                                "open its event file")
        if config.export.best:
            exports.recover(self.run_folder)

    @property
    def newest_evaluated(self) -> int:
        return max(self.evaluated_steps, default=-1)

    @property
    def max_steps(self) -> int:
        return self.config.train.max_steps

    def is_done(self) -> bool:
        """Its checkpoint at max_steps is evaluated."""
        return self.newest_evaluated >= self.max_steps

    def say(self, message: str) -> None:
        log.info(f"[{self.run}] {message}")

    # -- which checkpoints -----------------------------------------------------------------------

    def pending(self) -> list[Path]:
        """The listed checkpoints newer than the newest evaluated one, oldest first, but for
        those found unreadable before. An older one not evaluated is said once (passed_over)."""
        pending = []
        for path in checkpoints.listed(self.run_folder):
            step = checkpoints.step_of(path)
            if step in self.skipped:
                continue
            if step > self.newest_evaluated:
                pending.append(path)
            elif step not in self.evaluated_steps and step not in self.passed_over:
                self.passed_over.add(step)
                self.say(f"passed over {path.name}: older than the newest evaluated checkpoint "
                         f"(step {self.newest_evaluated}), and the eval curves only go forward")
        return pending

    def pass_over_waiting(self, older: list[Path]) -> None:
        """Says, in one line, which waiting checkpoints older than the one evaluated now are
        passed over (eval has fallen behind the trainer); they stay on disk, and are not named
        again as older than the newest evaluated."""
        if not older:
            return
        steps = [checkpoints.step_of(path) for path in older]
        self.passed_over.update(steps)
        count = f"{len(steps)} older checkpoint{'s' if len(steps) > 1 else ''}"
        which = f"steps {steps[0]}..{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"
        self.say(f"skipped {count} waiting ({which}): evaluating the newest, as the trainer "
                 f"is ahead")

    def evaluate_if_there(self, path: Path) -> dict | None:
        """evaluate(path), or None when the checkpoint went away before or while it was read
        (the trainer rotates old ones away), which is said and counted."""
        try:
            return self.evaluate(path)
        except tf.errors.OpError as error:
            self.skipped.add(checkpoints.step_of(path))
            self.say(f"skipped {path.name}: gone or incomplete while being read "
                     f"({error.message.strip()}); moving on")
            return None

    # -- one checkpoint --------------------------------------------------------------------------

    def evaluate(self, path: Path) -> dict:
        """Restores one checkpoint, measures it and records it. Raises a tf.errors.OpError when
        the checkpoint was rotated away before or while it was read."""
        step = self.model.read(path)
        labels, predictions, probabilities, loss_sum = self._classify_test_images()
        num_examples = len(labels)
        result = {
            "step": step,
            "precision_at_1": int(np.sum(predictions == labels)) / num_examples,
            "loss": loss_sum / num_examples,
            "num_examples": num_examples,
            "checkpoint": path.name,
            "weights": self.model.weights,
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
        if self.config.export.best:
            self._export_if_best(result)
        self._with_room_on_disk(lambda: append_result(self.eval_dir, result),
                                f"record the result of step {step} in {layout.RESULTS_FILE}")
        self.evaluated_steps.add(step)
        self.evaluations_done += 1
        self.say(f"precision @ 1 = {result['precision_at_1']:.3f} (step {step}; "
                 f"loss {result['loss']:.3f}; {num_examples} examples)")
        return result

    @tf.function
    def _classify_batch(self, images, labels):
        logits = tf.cast(self.model.classifier.logits(images), tf.float32)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tf.argmax(logits, 1, output_type=tf.int32), tf.nn.softmax(logits), loss

    def _classify_test_images(self):
        """One pass over the eval set: the labels, predicted class ids and softmax probabilities
        (one row per image), and the summed cross entropy."""
        labels, predictions, probabilities, loss_sum = [], [], [], 0.0
        for images, batch_labels in self.test_set.dataset(self.model.input_size):
            batch_predictions, batch_probabilities, batch_loss = self._classify_batch(
                images, batch_labels)
            labels.append(batch_labels.numpy())
            predictions.append(batch_predictions.numpy())
            probabilities.append(batch_probabilities.numpy())
            loss_sum += float(batch_loss)
        return (np.concatenate(labels), np.concatenate(predictions),
                np.concatenate(probabilities), loss_sum)

    # -- what is recorded ------------------------------------------------------------------------

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
        return disk_space.with_room_on_disk(
            write, self.eval_dir, what,
            meanwhile="Eval waits, keeping everything it has recorded, and goes on as soon as "
                      "space is freed there")

    def _write_events(self, result: dict, labels, predictions, probabilities) -> None:
        """The evaluation's events. Should a write fail (a full disk), the event file may end in
        half an event: the next attempt writes to a new file that starts a session at this step,
        which drops what of this evaluation the failed attempt had written."""
        step = result["step"]
        if self.writer is None:
            self._open_writer(session_start=step)
        matrix = confusion.count(labels, predictions, cifar10.NUM_CLASSES)
        try:
            with self.writer.as_default():
                summaries.write_evaluation(step, result["precision_at_1"], result["loss"])
                summaries.write_class_breakdown(
                    step, cifar10.CLASS_NAMES, confusion.precision_by_class(matrix),
                    confusion.recall_by_class(matrix), confusion.draw(matrix, cifar10.CLASS_NAMES))
                summaries.write_pr_curves(step, cifar10.CLASS_NAMES, labels, probabilities)
            self.writer.flush()
        except (tf.errors.OpError, OSError):
            self.writer = None  # abandoned, not closed: closing would try to flush it again
            raise

    # -- the views -------------------------------------------------------------------------------

    @tf.function(input_signature=[tf.TensorSpec([None, cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE,
                                                 cifar10.CHANNELS], tf.uint8)])
    def _embed_batch(self, images):
        standardized = pipeline.eval_images(images, self.model.input_size)
        embeddings = self.model.network(standardized, training=False)[recipes.EMBEDDING]
        # Predicted as eval counts (with the fast recipe's mirror images), so that the
        # projector's `correct` column agrees with precision @ 1.
        predictions = tf.argmax(self.model.classifier.logits(standardized), 1,
                                output_type=tf.int32)
        return embeddings, predictions

    def _projector_due(self, step: int) -> bool:
        return bool(len(self.test_set.projector_images)) and projector_due(
            self.evaluations_done, self.config.projector.every_evals, step, self.max_steps)

    def _write_projector(self, step: int) -> None:
        images, labels = self.test_set.projector_images, self.test_set.projector_labels
        batch_size = self.config.eval.batch_size
        embedded = [self._embed_batch(images[start:start + batch_size])
                    for start in range(0, len(images), batch_size)]
        embeddings = np.concatenate([batch[0].numpy() for batch in embedded])
        predictions = np.concatenate([batch[1].numpy() for batch in embedded])
        try:
            self._with_room_on_disk(
                lambda: projector.write(self.eval_dir, step, self.model.embedding_layer, images,
                                        labels, embeddings, predictions, cifar10.CLASS_NAMES),
                f"write the projector's files for step {step}")
        except (OSError, tf.errors.OpError) as error:  # the projector is a view; eval goes on
            self.say(f"could not write the projector's files for step {step}: {error}")

    def _export_if_best(self, result: dict) -> None:
        if not exports.improves_on_export(result, self.run_folder):
            return
        try:
            path = self._with_room_on_disk(
                lambda: exports.export(self.model.classifier, result, self.run_folder,
                                      keep=self.config.export.keep),
                f"export step {result['step']}")
        except (OSError, tf.errors.OpError) as error:
            self.say(f"could not export step {result['step']}: {error}; the previous export "
                     f"stays")
            return
        self.say(f"exported step {result['step']} (the best so far, precision @ 1 = "
                 f"{result['precision_at_1']:.3f}) to {path}")


def projector_due(evaluations_before: int, every_evals: int, step: int, max_steps: int) -> bool:
    """Whether the run's evaluation after `evaluations_before` others writes the Projector's
    files: the first, every every_evals-th after it, and the one at max_steps, so that the
    trained model is always among them."""
    return evaluations_before % every_evals == 0 or step >= max_steps
