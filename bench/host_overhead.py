"""Host overhead per step: what the loop around the device's work costs, ours against Keras fit.

    .venv/bin/python -m bench.host_overhead [--rounds 8] [--steps 600] [--batch-size 8]

On a GPU the tutorial CNN's step at batch 128 is a fraction of a millisecond of device work, so
what the host does around each step (the iterator's next, the bookkeeping, the call into the
graph) sets the speed. No GPU here: instead a network so small that the host's work is nearly all
of a step (one dense layer from the flattened image to the ten classes, batch 8, on CPU), trained
three ways on the same batches, in alternating rounds:

  ours      app.train.Trainer with that network as its recipe, as its loop runs it (bench/ours.py):
            several steps per call up to the next boundary (here none for a long while: the
            calls are as long as the loop lets them be, call_size.MAX_SECS_PER_CALL)
  keras@1   Keras compile + fit with its defaults (steps_per_execution=1)
  keras@32  Keras fit with steps_per_execution=32

The figure is microseconds per step (a step's whole cost when the device work is nearly nil).
Target: ours no worse than keras@32. The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import keras
import tensorflow as tf

from app import config as configuration
from app.data import cifar10
from app.model.recipes import Recipe
from app.model.recipes.recipe import model_outputs
from app.train.trainer import Trainer
from bench import machine
from bench.ours import OurTrainer

KERAS_STEPS_PER_EXECUTION = (1, 32)
QUIET_CORES = 0.15


class OneDenseLayer(Recipe):
    """The smallest network there is: the standardized 32x32 image, flattened, into ten scores."""
    input_size = cifar10.IMAGE_SIZE
    test_time_flips = False
    bfloat16_is_safe = False
    float16_is_safe = False
    embedding_layer = "flatten"

    def build_model(self) -> keras.Model:
        images, flat, logits = one_dense_layer()
        return keras.Model(images, model_outputs({"flatten": flat, "logits": logits},
                                                 logits="logits", embedding="flatten"))

    def augment(self, images):
        return tf.image.per_image_standardization(tf.cast(images, tf.float32))

    def learning_rate(self, steps_per_epoch, scale):
        return keras.optimizers.schedules.ExponentialDecay(0.01 * scale, 10 ** 9, 1.0)

    def optimizer(self, learning_rate):
        return keras.optimizers.SGD(learning_rate)

    def per_example_loss(self, labels, logits):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    def regularization_losses(self, model):
        return {}


def one_dense_layer():
    """The network's input, its flattened image and its logits (Keras tensors)."""
    images = keras.Input((cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, cifar10.CHANNELS))
    flat = keras.layers.Flatten(name="flatten")(images)
    return images, flat, keras.layers.Dense(cifar10.NUM_CLASSES, name="logits")(flat)


class KerasFit:
    """The same network in plain Keras, fit on our pipeline's batches (so that only the loops
    differ), steps_per_execution steps per call."""

    def __init__(self, dataset, steps_per_execution: int):
        self.dataset = dataset
        self.steps_per_execution = steps_per_execution
        images, _, logits = one_dense_layer()
        self.model = keras.Model(images, logits)
        self.model.compile(optimizer=keras.optimizers.SGD(0.01),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           steps_per_execution=steps_per_execution)

    def run(self, steps: int) -> float:
        """Seconds per step over `steps` steps (whole executions), after one untimed execution."""
        per_execution = self.steps_per_execution
        executions = max(2, -(-steps // per_execution))
        ends = []
        clock = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=(1 + executions) * per_execution,
                       callbacks=[clock], verbose=0, shuffle=False)
        return (ends[-1] - ends[0]) / ((len(ends) - 1) * per_execution)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=640, help="steps per contender per round")
    parser.add_argument("--batch-size", type=int, default=8)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-host-overhead-") as folder:
        config = configuration.load(overrides=[
            f"paths.train_dir={folder}/train", f"paths.data_dir={folder}/data",
            "data.source=synthetic", f"train.batch_size={arguments.batch_size}",
            # Nothing due for a long while: the loop's calls are as long as it lets them be.
            "train.max_steps=100000000", "runtime.summary_every_steps=100000000",
            "runtime.checkpoint_every_steps=null", "runtime.checkpoint_every_secs=null"], environ={})
        trainer = Trainer(config, recipe=OneDenseLayer(config))
        figures = measure(trainer, arguments.rounds, arguments.steps)
    print_summary(figures)
    print(json.dumps(figures))
    return 0


def measure(trainer: Trainer, rounds: int, steps: int) -> dict:
    ours = OurTrainer(trainer)
    # The same batches for Keras: our pipeline's, the labels as Keras wants them.
    keras_batches = trainer.dataset_from(0).map(lambda images, labels: (images, labels))
    peers = {f"keras@{spe}": KerasFit(keras_batches, spe) for spe in KERAS_STEPS_PER_EXECUTION}
    print(machine.headline(machine.describe()))
    print(f"one dense layer (3,072 -> 10), batch {trainer.global_batch_size}, {steps} steps per "
          f"contender per round, {rounds} rounds\n")
    ours.run(steps)  # traces both of our graphs; the pace of our calls settles
    for peer in peers.values():
        peer.run(steps)

    rows = []
    for round_number in range(1, rounds + 1):
        with machine.Window() as window:
            calls = ours.run(steps)
            row = {"round": round_number,
                   "ours_us": 1e6 * sum(c.seconds for c in calls) / sum(c.steps for c in calls),
                   "ours_steps_per_call": statistics.mean(c.steps for c in calls)}
            for name, peer in peers.items():
                row[f"{name}_us"] = 1e6 * peer.run(steps)
        row["other_programs_cpu_cores"] = window.other_cores
        rows.append(row)
        print(f"round {round_number}: ours {row['ours_us']:.0f} us/step ("
              f"{row['ours_steps_per_call']:.0f} steps a call), "
              + ", ".join(f"{name} {row[f'{name}_us']:.0f}" for name in peers)
              + f"; others took {row['other_programs_cpu_cores']:.2f} cores", flush=True)

    quiet = [row for row in rows if row["other_programs_cpu_cores"] <= QUIET_CORES]
    counted = quiet if len(quiet) >= max(3, rounds // 4) else rows
    figures = {"benchmark": "host_overhead", "machine": machine.describe(),
               "network": "one dense layer, 3072 -> 10", "batch_size": trainer.global_batch_size,
               "steps_per_round": steps, "rounds": rounds, "rounds_counted": len(counted),
               "only_quiet_rounds_counted": counted is quiet}
    for name in ("ours", *peers):
        figures[f"{name}_us_per_step"] = statistics.median(row[f"{name}_us"] for row in counted)
    figures["ours_steps_per_call"] = statistics.median(row["ours_steps_per_call"]
                                                        for row in counted)
    figures["keras@1_over_ours"] = figures["keras@1_us_per_step"] / figures["ours_us_per_step"]
    figures["keras@32_over_ours"] = figures["keras@32_us_per_step"] / figures["ours_us_per_step"]
    figures["target_ours_no_worse_than_keras@32"] = (
        figures["ours_us_per_step"] <= figures["keras@32_us_per_step"])
    figures["rounds_detail"] = rows
    return figures


def print_summary(f: dict) -> None:
    print(f"\nmicroseconds per step (median of {f['rounds_counted']} "
          f"{'quiet ' if f['only_quiet_rounds_counted'] else ''}rounds):")
    print(f"  ours      {f['ours_us_per_step']:8.0f}   ({f['ours_steps_per_call']:.0f} steps a call)")
    print(f"  keras@1   {f['keras@1_us_per_step']:8.0f}   {f['keras@1_over_ours']:.2f}x ours")
    print(f"  keras@32  {f['keras@32_us_per_step']:8.0f}   {f['keras@32_over_ours']:.2f}x ours")
    verdict = "met" if f["target_ours_no_worse_than_keras@32"] else "MISSED"
    print(f"target, ours no worse than keras@32: {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
