"""Local response normalization: TensorFlow's op against the banded matmul the tutorial recipe
uses (app/model/recipes/tutorial.py).

    .venv/bin/python -m bench.lrn [--rounds 8]

The profile of a training step (bench/profile_step.py) puts the tutorial's two LRN layers at
about a fifth of its time on the CPU, mostly LRNGrad. LRN divides each activation by
(bias + alpha * sum of squares over the 2r+1 neighbouring channels) ** beta; that sum over
channels is a matmul of the squared activations with a 0/1 band matrix, which oneDNN does fast,
and the rest is element-wise, which autodiff differentiates. TensorFlow's LRN kernels also exist
for float32 (and float16) only, so they stop a bfloat16 model.

Printed: how far the two agree (forward and gradient, float32), then whole training steps of the
tutorial CNN with each LRN, in float32 and in mixed bfloat16 (TensorFlow's op cast to float32
and back there, since it has no bfloat16 kernel), timed in alternation.
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import time

import keras
import tensorflow as tf

from app.data import cifar10
from app.model.recipes.tutorial import CROP_SIZE, local_response_normalization as banded_matmul_lrn
from bench import machine
from bench.throughput import tensorflow_lrn, user_written_tutorial_cnn

BATCH_SIZE = 128
STEPS_PER_TIMING = 5


def tensorflow_lrn_any_dtype(x):
    """TensorFlow's op in float32 whatever the model computes in (it has no bfloat16 kernel)."""
    return tf.cast(tensorflow_lrn(tf.cast(x, tf.float32)), x.dtype)


def agreement() -> dict:
    # Activations the size and scale of norm1's input, so that the normalization really acts.
    x = tf.random.normal([BATCH_SIZE, 12, 12, 64], stddev=30.0)
    upstream = tf.random.normal(x.shape)

    def value_and_gradient(function):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
            loss = tf.reduce_sum(y * upstream)
        return y, tape.gradient(loss, x)

    (y_op, g_op), (y_mm, g_mm) = map(value_and_gradient, (tensorflow_lrn, banded_matmul_lrn))

    def relative(a, b):
        return float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(a)))
    return {"forward_max_relative_difference": relative(y_op, y_mm),
            "gradient_max_relative_difference": relative(g_op, g_mm)}


def training_step(lrn_function, policy: str):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = user_written_tutorial_cnn(lrn_function)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss
    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8,
                        help="alternating timings of each variant; the best counts (default 8)")
    arguments = parser.parse_args()

    print(machine.headline(machine.describe()))
    agrees = agreement()
    print(f"banded matmul vs TensorFlow's op (float32): forward differs by at most "
          f"{agrees['forward_max_relative_difference']:.1e}, the gradient by "
          f"{agrees['gradient_max_relative_difference']:.1e} (relative to the largest value)\n")

    images = tf.random.normal([BATCH_SIZE, CROP_SIZE, CROP_SIZE, cifar10.CHANNELS])
    labels = tf.random.uniform([BATCH_SIZE], 0, cifar10.NUM_CLASSES, tf.int32)
    variants = {
        ("float32", "TensorFlow's op"): training_step(tensorflow_lrn, "float32"),
        ("float32", "banded matmul"): training_step(banded_matmul_lrn, "float32"),
        ("mixed bfloat16", "TensorFlow's op in float32"):
            training_step(tensorflow_lrn_any_dtype, "mixed_bfloat16"),
        ("mixed bfloat16", "banded matmul"): training_step(banded_matmul_lrn, "mixed_bfloat16"),
    }
    for step in variants.values():  # trace, and warm oneDNN's kernel caches
        for _ in range(3):
            step(images, labels).numpy()
    # The best of several alternating timings: this machine is shared, and the best is the
    # one least disturbed by others.
    best = dict.fromkeys(variants, float("inf"))
    machine_busy, cpu, wall = machine.cpu_busy_seconds(), time.process_time(), time.perf_counter()
    for _ in range(arguments.rounds):
        for variant, step in variants.items():
            started = time.perf_counter()
            for _ in range(STEPS_PER_TIMING):
                loss = step(images, labels)
            loss.numpy()
            best[variant] = min(best[variant], (time.perf_counter() - started) / STEPS_PER_TIMING)
    wall = time.perf_counter() - wall
    other_cores = max(0.0, (machine.cpu_busy_seconds() - machine_busy - time.process_time() + cpu)
                      / wall)

    baseline = best[("float32", "TensorFlow's op")]
    print(f"{'precision':<16} {'LRN':<28} {'ms/step':>8} {'img/s':>7} {'speed-up':>9}")
    rows = []
    for (precision, lrn), seconds in best.items():
        rows.append({"precision": precision, "lrn": lrn, "step_ms": 1000 * seconds,
                     "img_per_s": BATCH_SIZE / seconds, "speedup": baseline / seconds})
        print(f"{precision:<16} {lrn:<28} {1000 * seconds:>8.1f} {BATCH_SIZE / seconds:>7.0f} "
              f"{baseline / seconds:>8.2f}x")
    print(f"\n(other programs took {other_cores:.2f} cores meanwhile)")
    print(json.dumps({"benchmark": "lrn", "machine": machine.describe(), **agrees,
                      "batch_size": BATCH_SIZE, "steps": rows,
                      "other_programs_cpu_cores": other_cores}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
