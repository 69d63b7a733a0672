"""Everything TensorBoard shows, in one place, named as the tutorial named it.

Training run (<train_dir>/<run>, TensorBoard's run `<run>`):
  images                              the augmented inputs of a batch
  <layer>/activations, <layer>/sparsity   per layer: a histogram and the fraction of zeros
  cross_entropy (raw), cross_entropy  each loss as computed, and as its 0.9 moving average;
  local3/weight_loss (raw), ...       likewise the weight-decay terms and total_loss
  learning_rate
  loss_scale                          float16's dynamic loss scale (only when computing in float16)
  <variable>, <variable>/gradients    histograms of every trainable variable and its gradient
  examples_per_sec, sec_per_batch     throughput (of the whole job), at each log line
  replicas                            how many model replicas train in sync
  config                              the resolved configuration, as text
  the graph of the train step         traced once, at the first step
Eval run (<run>/eval, TensorBoard's `<run>/eval`), all at each checkpoint's global step:
  precision @ 1, cross_entropy        over eval.num_examples test images
  precision/<class>, recall/<class>   per class (see app/eval/confusion.py for which is which)
  confusion_matrix                    an image: true class by predicted class
  pr_curves/<class>                   the precision-recall curve of "is it <class>?" (one against
                                      the rest, thresholding the softmax probability)
  the Projector's embeddings          files, not events: app/tensorboard/projector.py
HParams (<run>): written by app/tensorboard/hparams.py.

Each program marks where it starts (`mark_session_start`): after a kill -9 the trainer resumes
from its last checkpoint and trains the steps after it a second time, and the mark makes
TensorBoard drop what the earlier start wrote from that step on, so that no curve repeats a step.

Histograms of large tensors see a fixed-size, evenly strided sample: conv1's activations alone are
4.7M values a batch, and bucketing all of them costs more than a whole training step.
"""
from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.pr_curve import summary as pr_curve_summary
# The only way TensorFlow 2 writes a whole Event (a SessionLog is not a Summary) through a
# summary writer: the op exists for it, but its wrapper is not exported.
from tensorflow.python.ops.summary_ops_v2 import import_event

HISTOGRAM_SAMPLE_SIZE = 16_384
IMAGES_SHOWN = 10
LOSS_AVERAGE_DECAY = 0.9
# Thresholds on the probability at which a PR curve is sampled: smooth enough to read, and half
# the bytes of TensorBoard's default 201 (each curve is stored anew at every evaluation).
PR_CURVE_THRESHOLDS = 101


def _sample(tensor: tf.Tensor) -> tf.Tensor:
    values = tf.reshape(tensor, [-1])
    stride = tf.maximum(1, tf.size(values) // HISTOGRAM_SAMPLE_SIZE)
    return values[::stride]


def _displayable(images: tf.Tensor) -> tf.Tensor:
    # The network sees standardized images; stretch each to [0, 1] so it can be looked at.
    low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return (images - low) / tf.maximum(high - low, 1e-6)


class LossAverages(tf.Module):
    """The 0.9 moving average of each loss, the smoothed curves the tutorial drew."""

    def __init__(self, names):
        super().__init__(name="loss_averages")
        self.averages = {name: tf.Variable(0.0, trainable=False, name=name.replace("/", "_"))
                         for name in names}
        self.updates = tf.Variable(0, trainable=False, dtype=tf.int64, name="updates")

    def update(self, losses: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        first = tf.equal(self.updates, 0)
        for name, value in losses.items():
            average = self.averages[name]
            average.assign(tf.where(first, value, LOSS_AVERAGE_DECAY * average
                                    + (1.0 - LOSS_AVERAGE_DECAY) * value))
        self.updates.assign_add(1)
        return {name: average.read_value() for name, average in self.averages.items()}


def mark_session_start(step: int) -> None:
    """Writes SessionLog START at `step` to the default writer: TensorBoard (purge_orphaned_data,
    its default) then drops every event of the run from `step` on that it read before the mark,
    as the tutorial's Supervisor had it do. TensorBoard takes a run's first mark for its
    beginning and only later ones for restarts, so the mark is written twice: a run whose
    earlier starts wrote none (made before marks were written) is purged too, and for any other
    the second mark drops nothing more."""
    start = event_pb2.Event(step=step, wall_time=time.time(), session_log=event_pb2.SessionLog(
        status=event_pb2.SessionLog.START)).SerializeToString()
    for _ in range(2):
        import_event(tf.constant(start))


def write_activations_and_gradients(step, images, activations, gradients_and_variables) -> None:
    """The summaries only a replica can see (its batch, its activations, its gradients); under a
    distribution strategy TensorFlow records them for the first replica alone."""
    tf.summary.image("images", _displayable(images), step=step, max_outputs=IMAGES_SHOWN)
    for layer, activation in activations.items():
        tf.summary.histogram(f"{layer}/activations", _sample(activation), step=step)
        tf.summary.scalar(f"{layer}/sparsity", tf.math.zero_fraction(activation), step=step)
    for gradient, variable in gradients_and_variables:
        tf.summary.histogram(variable.path, _sample(variable), step=step)
        tf.summary.histogram(f"{variable.path}/gradients", _sample(gradient), step=step)


def write_losses(step, losses, averaged_losses, learning_rate) -> None:
    """The losses of the whole (global) batch, raw and averaged, and the learning rate."""
    for name, value in losses.items():
        tf.summary.scalar(f"{name} (raw)", value, step=step)
        tf.summary.scalar(name, averaged_losses[name], step=step)
    tf.summary.scalar("learning_rate", learning_rate, step=step)


def write_loss_scale(step, scale) -> None:
    """float16's loss scale (app/train/loss_scaling.py): each halving is a skipped step."""
    tf.summary.scalar("loss_scale", scale, step=step)


def write_throughput(step: int, examples_per_sec: float, sec_per_batch: float,
                     replicas: int) -> None:
    tf.summary.scalar("examples_per_sec", examples_per_sec, step=step)
    tf.summary.scalar("sec_per_batch", sec_per_batch, step=step)
    tf.summary.scalar("replicas", replicas, step=step)


def write_config(step: int, config_yaml: str) -> None:
    # Indented four spaces: TensorBoard renders text summaries as Markdown, this as code.
    text = "\n".join("    " + line for line in config_yaml.splitlines())
    tf.summary.text("config", text, step=step)


def write_starts(step: int, starts_table: str) -> None:
    """The run's starts so far, and what each changed (app/train/starts.py), for the Text tab."""
    tf.summary.text("starts", starts_table, step=step)


def write_evaluation(step: int, precision: float, loss: float) -> None:
    tf.summary.scalar("precision @ 1", precision, step=step)
    tf.summary.scalar("cross_entropy", loss, step=step)


def write_class_breakdown(step: int, class_names, precision: np.ndarray, recall: np.ndarray,
                          confusion_image: np.ndarray) -> None:
    for name, class_precision, class_recall in zip(class_names, precision, recall):
        tf.summary.scalar(f"precision/{name}", class_precision, step=step)
        tf.summary.scalar(f"recall/{name}", class_recall, step=step)
    tf.summary.image("confusion_matrix", confusion_image[None], step=step)


def write_pr_curves(step: int, class_names, labels: np.ndarray,
                    probabilities: np.ndarray) -> None:
    """One curve per class: its images are the positives, the probability it gets the score."""
    for class_id, name in enumerate(class_names):
        summary = pr_curve_summary.pb(
            name, labels=labels == class_id, predictions=probabilities[:, class_id],
            num_thresholds=PR_CURVE_THRESHOLDS, display_name=name,
            description=f"Is it a {name}? Precision against recall as the threshold on the "
                        f"softmax probability of {name} falls from 1 to 0.")
        # pb() names the tag "<name>/pr_curves"; one group of curves reads better in the tab.
        summary.value[0].tag = f"pr_curves/{name}"
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
