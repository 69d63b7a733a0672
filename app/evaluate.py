"""Eval: a separate program that only reads checkpoints, as in the tutorial.

Every `eval.interval_secs` it looks at train_dir's `checkpoint` state file and evaluates each
checkpoint it has not evaluated yet, oldest first: it restores the moving-average weights (or the
raw ones), runs exactly `eval.num_examples` test images once each, and records precision @ 1 and
the mean cross entropy at the checkpoint's global step, in TensorBoard (train_dir/eval) and as one
JSON line in train_dir/eval/results.jsonl. Those lines are also its memory: after a restart it goes
on from the last one. Once it has evaluated the checkpoint at train.max_steps it exits 0.

The trainer rotates old checkpoints away while eval may be reading one; such a checkpoint is
skipped, and eval moves on to the newest.
"""
from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import tensorflow as tf

from app import data, devices, model as models, summaries
from app.averages import MovingAverages

RESULTS_FILE = "results.jsonl"


class Evaluator:
    def __init__(self, config):
        self.config = config
        self.train_dir = Path(config.paths.train_dir)
        self.eval_dir = self.train_dir / "eval"
        evaluation = config.eval
        devices.configure(threads=evaluation.threads,
                          gpu_memory_limit_mb=evaluation.gpu_memory_limit_mb)
        batches = data.prepare(config.data, config.paths.data_dir)
        images, labels = data.load_split(batches, "test")
        self.dataset = data.eval_dataset(images, labels, evaluation.num_examples,
                                         evaluation.batch_size)
        self.num_examples = evaluation.num_examples

        self.model = models.build(config.train.model)
        self.logits = models.logits_model(self.model)
        self.averages = MovingAverages(self.model.trainable_variables, decay=0.0)
        self.step = tf.Variable(0, dtype=tf.int64)
        self.checkpoint = tf.train.Checkpoint(step=self.step, model=self.model,
                                              averages=self.averages)
        self.eval_dir.mkdir(parents=True, exist_ok=True)
        self.writer = tf.summary.create_file_writer(str(self.eval_dir))
        self.evaluated_steps = {result["step"] for result in read_results(self.eval_dir)}
        self.skipped = 0

    @tf.function
    def _batch_counts(self, images, labels):
        logits = self.logits(images, training=False)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32),
                                                 labels), tf.int64))
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return correct, loss

    def evaluate(self, checkpoint_path: str) -> dict:
        """Restores one checkpoint and measures it. Raises a tf.errors.OpError (NotFoundError, or
        a plain OpError for a missing data file) when the checkpoint was rotated away before or
        while it was read."""
        self.checkpoint.read(checkpoint_path).expect_partial()
        if self.config.eval.use_moving_averages:
            self.averages.copy_to_variables()
        correct, loss_sum = 0, 0.0
        for images, labels in self.dataset:
            batch_correct, batch_loss = self._batch_counts(images, labels)
            correct += int(batch_correct)
            loss_sum += float(batch_loss)
        step = int(self.step.numpy())
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
        with self.writer.as_default():
            summaries.write_evaluation(step, result["precision_at_1"], result["loss"])
        self.writer.flush()
        with open(self.eval_dir / RESULTS_FILE, "a", encoding="utf-8") as results:
            results.write(json.dumps(result) + "\n")
        self.evaluated_steps.add(step)
        print(f"precision @ 1 = {result['precision_at_1']:.3f} (step {step}; "
              f"loss {result['loss']:.3f}; {self.num_examples} examples)", flush=True)
        return result

    def evaluate_pending(self) -> None:
        """Evaluates every checkpoint on disk not evaluated yet, oldest first."""
        for path in self._pending_checkpoints():
            try:
                self.evaluate(path)
            except tf.errors.OpError as error:
                self.skipped += 1
                print(f"skipped {Path(path).name}: gone or incomplete while being read "
                      f"({error.message.strip()}); moving on", flush=True)

    def evaluate_newest(self) -> dict | None:
        """--once: the newest checkpoint, retried with the then-newest if rotation takes it."""
        for _ in range(3):
            checkpoints = _checkpoints_on_disk(self.train_dir)
            if not checkpoints:
                return None
            try:
                return self.evaluate(checkpoints[-1])
            except tf.errors.OpError as error:
                self.skipped += 1
                print(f"skipped {Path(checkpoints[-1]).name}: {error.message.strip()}", flush=True)
        return None

    def _pending_checkpoints(self) -> list[str]:
        return [path for path in _checkpoints_on_disk(self.train_dir)
                if _step_of(path) not in self.evaluated_steps]

    def watch(self) -> int:
        max_steps = self.config.train.max_steps
        print(f"watching {self.train_dir} for checkpoints every "
              f"{self.config.eval.interval_secs:g} s", flush=True)
        while max(self.evaluated_steps, default=-1) < max_steps:
            self.evaluate_pending()
            if max(self.evaluated_steps, default=-1) >= max_steps:
                break
            time.sleep(self.config.eval.interval_secs)
        print(f"evaluated the checkpoint at train.max_steps = {max_steps}; done", flush=True)
        return 0


def _checkpoints_on_disk(train_dir: Path) -> list[str]:
    state = tf.train.get_checkpoint_state(str(train_dir))
    if state is None:
        return []
    paths = [str(train_dir / Path(path).name) for path in state.all_model_checkpoint_paths]
    return sorted(paths, key=_step_of)


def _step_of(checkpoint_path: str) -> int:
    return int(checkpoint_path.rsplit("-", 1)[1])


def read_results(eval_dir: Path) -> list[dict]:
    """The evaluations recorded so far, oldest first."""
    path = Path(eval_dir) / RESULTS_FILE
    if not path.exists():
        return []
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            results.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill; the next evaluation writes a whole one
    return results


def main(config, once: bool = False) -> int:
    evaluator = Evaluator(config)
    if once:
        if evaluator.evaluate_newest() is None:
            print(f"error: no readable checkpoint in {evaluator.train_dir}", flush=True)
            return 2
        return 0
    return evaluator.watch()
