"""Throughput: our trainer against the Keras peer and against the machine's limit, in one run.

    .venv/bin/python -m bench.throughput [--rounds 20] [--window-steps 20]
        [--set train.mixed_precision=bfloat16]

Three contenders train the same tutorial model, at the same batch size, on the same synthetic
images, in this one process:

  ours     app.train.Trainer itself, as its loop runs it (bench/ours.py): its tf.data pipeline,
           several steps per call, and summaries at its default cadence.
  keras    what a user would write instead: the tutorial's network in plain Keras (the same
           layers and FLOPs), compile + fit with its defaults, fed by the pipeline TensorFlow's
           guides show (a per-image map with the same augmentations, then batch and prefetch);
           and the same with steps_per_execution=32, a stricter peer.
  limit    the machine's own ceiling for this model: TensorFlow's rate on a large float32 matmul
           (the best-case GFLOP/s of this CPU) divided by the model's training FLOPs per image.

Speeds on a shared 2-core machine drift by 10-15% over minutes, and other programs come and go,
so ours, keras and the matmul run in short alternating rounds, and each round notes the CPU other
programs took meanwhile (from /proc/stat). The figures come from the quiet rounds (others under
0.15 cores) when there are enough of them, else from all rounds, flagged. Also measured: what
the summary steps cost at the default cadence, and what the two input pipelines deliver alone.

The last line printed is one JSON object with every figure.
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
from app.model.flops import training_flops_per_image
from app.model.recipes.tutorial import CROP_SIZE
from app.train.trainer import Trainer
from bench import machine
from bench.ours import OurTrainer

# The targets this benchmark judges its figures by.
MIN_SPEEDUP_OVER_KERAS = 1.3
MIN_FRACTION_OF_LIMIT = 0.5
MAX_SUMMARY_COST = 0.03
MIN_PIPELINE_HEADROOM = 5.0

# The stricter peer: Keras running that many steps per call to the graph, as ours does.
KERAS_STRICTER_STEPS_PER_EXECUTION = 32
# fit() builds a fresh iterator each call, which first fills its 10,000-image shuffle buffer;
# its first few steps are left out of the clock so both contenders are timed in steady state.
KERAS_UNTIMED_STEPS = 3
WARMUP_STEPS = 5           # traces both of our graphs and fit's, and warms the thread pools
PIPELINE_BATCHES = 300     # batches drawn from each input pipeline alone
QUIET_CORES = 0.15         # a round counts as quiet when other programs took less CPU than this
MIN_QUIET_ROUNDS = 5
MATMUL_SIZE = 4096         # large enough that this CPU reaches its best rate (~2048 is not)
MATMUL_REPEATS = 3


def benchmark_config(folder: str, batch_size: int | None, overrides: list[str]):
    overrides = [f"paths.train_dir={folder}/train", f"paths.data_dir={folder}/data",
                 "data.source=synthetic", *overrides]
    if batch_size:
        overrides.append(f"train.batch_size={batch_size}")
    # environ={}: a CIFAR10_* variable in the caller's shell must not change what is measured.
    return configuration.load(overrides=overrides, environ={})


# ---------------------------------------------------------------------------------------------
# keras: compile + fit on the guides' per-image pipeline
# ---------------------------------------------------------------------------------------------

def guide_pipeline(images, labels, batch_size: int) -> tf.data.Dataset:
    """The input pipeline of TensorFlow's tutorials: shuffle, map one image at a time, batch,
    prefetch. The same distortions as the CIFAR-10 tutorial's distorted_inputs()."""

    def distort(image, label):
        image = tf.cast(image, tf.float32)
        image = tf.image.random_crop(image, [CROP_SIZE, CROP_SIZE, cifar10.CHANNELS])
        image = tf.image.random_flip_left_right(image)
        image = tf.image.random_brightness(image, max_delta=63)
        image = tf.image.random_contrast(image, lower=0.2, upper=1.8)
        return tf.image.per_image_standardization(image), label

    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(labels))
            .repeat()
            .map(distort, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


class BatchClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def tensorflow_lrn(x):
    """The tutorial's local response normalization, with TensorFlow's own op."""
    return tf.nn.local_response_normalization(x, depth_radius=4, bias=1.0, alpha=0.001 / 9.0,
                                              beta=0.75)


def user_written_tutorial_cnn(lrn_function=tensorflow_lrn) -> keras.Model:
    """The tutorial's network as a user writes it in Keras: the same layers, sizes and FLOPs as
    the tutorial recipe's, with TensorFlow's own LRN op. Written out here rather than taken from
    app/model/recipes/tutorial.py, so that what the app does to speed up its model shows as a
    difference."""
    def conv(name):
        return keras.layers.Conv2D(64, 5, padding="same", activation="relu", name=name)

    def lrn(name):
        return keras.layers.Lambda(lrn_function, name=name)

    return keras.Sequential([
        keras.Input((CROP_SIZE, CROP_SIZE, cifar10.CHANNELS)),
        conv("conv1"), keras.layers.MaxPool2D(3, 2, padding="same"), lrn("norm1"),
        conv("conv2"), lrn("norm2"), keras.layers.MaxPool2D(3, 2, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(384, activation="relu"), keras.layers.Dense(192, activation="relu"),
        keras.layers.Dense(cifar10.NUM_CLASSES),
    ], name="keras_tutorial_cnn")


class KerasFit:
    def __init__(self, images, labels, batch_size: int, learning_rate: float,
                 steps_per_execution: int = 1):
        self.batch_size = batch_size
        self.steps_per_execution = steps_per_execution
        self.dataset = guide_pipeline(images, labels, batch_size)
        # In float32 whatever policy the Trainer set for itself (train.mixed_precision).
        ours_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("float32")
        try:
            self.model = user_written_tutorial_cnn()
        finally:
            keras.mixed_precision.set_global_policy(ours_policy)
        self.model.compile(
            optimizer=keras.optimizers.SGD(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"], steps_per_execution=steps_per_execution)
        self.clock = BatchClock()

    def run(self, steps: int) -> float:
        """Fits for at least `steps` timed steps (whole executions); returns their images per
        second."""
        executions = -(-steps // self.steps_per_execution)
        per_execution = self.steps_per_execution
        # shuffle=False only quiets a warning: fit never shuffles a tf.data.Dataset itself.
        self.model.fit(self.dataset, epochs=1,
                       steps_per_epoch=(KERAS_UNTIMED_STEPS + executions) * per_execution,
                       callbacks=[self.clock], verbose=0, shuffle=False)
        ends = self.clock.ends  # one per execution (of steps_per_execution steps)
        timed = len(ends) - KERAS_UNTIMED_STEPS
        return timed * per_execution * self.batch_size / (ends[-1] - ends[KERAS_UNTIMED_STEPS - 1])


# ---------------------------------------------------------------------------------------------
# limit: the matmul rate
# ---------------------------------------------------------------------------------------------

def matmul_gflops(size: int = MATMUL_SIZE, repeats: int = MATMUL_REPEATS) -> float:
    """The best of `repeats` timings of one size x size float32 matmul, in GFLOP/s."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    tf.matmul(a, b).numpy()  # warm-up: oneDNN picks and caches its kernel
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best / 1e9


def pipeline_rate(dataset: tf.data.Dataset, batch_size: int, batches: int) -> float:
    iterator = iter(dataset)
    for _ in range(10):  # the shuffle buffer fills and the thread pool starts
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20,
                        help="alternating ours/keras/matmul rounds (default 20)")
    parser.add_argument("--window-steps", type=int, default=20,
                        help="steps per window (default 20); rounds x window-steps should be a "
                             "multiple of runtime.summary_every_steps, so that ours does its "
                             "share of summary steps")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="default: train.batch_size from app/config/defaults.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="a config override for ours, as for the app (repeatable)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
        config = benchmark_config(folder, arguments.batch_size, arguments.overrides)
        figures = measure(config, arguments.rounds, arguments.window_steps)
    print_summary(figures)
    figures["overrides"] = arguments.overrides
    print(json.dumps(figures))
    return 0


def measure(config, rounds: int, window_steps: int) -> dict:
    trainer = Trainer(config)
    batch_size = trainer.global_batch_size
    ours = OurTrainer(trainer)
    images, labels = cifar10.load_split(cifar10.prepare(config.data, config.paths.data_dir), "train")
    keras_fit = KerasFit(images, labels, batch_size, config.tutorial.initial_learning_rate)
    keras_fit_32 = KerasFit(images, labels, batch_size, config.tutorial.initial_learning_rate,
                            steps_per_execution=KERAS_STRICTER_STEPS_PER_EXECUTION)
    flops_per_image = training_flops_per_image(trainer.model)
    if training_flops_per_image(keras_fit.model) != flops_per_image:
        raise SystemExit(f"the Keras peer is the tutorial CNN; train.recipe "
                         f"{config.train.recipe!r} trains another network")

    print(machine.headline(machine.describe()))
    print(f"{config.train.recipe}, batch {batch_size}, {len(labels):,} synthetic images, "
          f"{flops_per_image / 1e6:.1f} MFLOP to train on one image; summaries every "
          f"{config.runtime.summary_every_steps} steps; {rounds} rounds of {window_steps} steps "
          f"each, alternating\n")

    ours.run(WARMUP_STEPS)  # step 0 is a summary step: both of our graphs are traced here
    keras_fit.run(WARMUP_STEPS)
    keras_fit_32.run(WARMUP_STEPS)

    rows = []
    for round_number in range(1, rounds + 1):
        # This machine is shared: what other programs took during a round says whether it counts.
        with machine.Window() as window:
            calls = ours.run(window_steps)
            keras_rate = keras_fit.run(window_steps)
            keras_32_rate = keras_fit_32.run(window_steps)
            gflops = matmul_gflops()
        rows.append({
            "round": round_number,
            "ours_img_per_s": window_steps * batch_size / sum(call.seconds for call in calls),
            "keras_img_per_s": keras_rate, "keras_32_img_per_s": keras_32_rate,
            "matmul_gflops": gflops,
            "own_cpu_cores": window.own_cores,
            "other_programs_cpu_cores": window.other_cores,
            "our_calls": calls,
        })
        print_row(rows[-1], header=round_number == 1)

    our_pipeline_rate = pipeline_rate(trainer.dataset_from(0), batch_size, PIPELINE_BATCHES)
    guide_pipeline_rate = pipeline_rate(keras_fit.dataset, batch_size, PIPELINE_BATCHES)

    # The figures come from the rounds in which other programs left the machine alone, when
    # there are enough of them; otherwise from all rounds, and the JSON says so.
    quiet = [row for row in rows if row["other_programs_cpu_cores"] <= QUIET_CORES]
    counted = quiet if len(quiet) >= max(MIN_QUIET_ROUNDS, rounds // 4) else rows
    # Rates over the counted rounds: total images over total time, so that ours carries its
    # share of summary steps and a slow moment of the machine weighs on both contenders alike.
    counted_calls = [call for row in counted for call in row["our_calls"]]
    ours_rate = (sum(call.steps for call in counted_calls) * batch_size
                 / sum(call.seconds for call in counted_calls))
    keras_rate, keras_32_rate = (
        len(counted) * window_steps * batch_size / sum(
            window_steps * batch_size / row[key] for row in counted)
        for key in ("keras_img_per_s", "keras_32_img_per_s"))
    gflops = statistics.median(row["matmul_gflops"] for row in counted)
    limit_rate = gflops * 1e9 / flops_per_image
    all_calls = [call for row in rows for call in row["our_calls"]]

    plain_step = statistics.median(call.seconds / call.steps for call in all_calls
                                   if not call.summary)
    summary_steps = [call.seconds for call in all_calls if call.summary]
    # What the summary steps took beyond a plain step, as a share of all of ours' time.
    summary_cost = (sum(seconds - plain_step for seconds in summary_steps)
                    / sum(call.seconds for call in all_calls))

    figures = {
        "benchmark": "throughput",
        "machine": machine.describe(),
        "recipe": config.train.recipe, "batch_size": batch_size,
        "train_examples": len(labels), "summary_every_steps": config.runtime.summary_every_steps,
        "rounds": rounds, "window_steps": window_steps,
        "training_mflop_per_image": flops_per_image / 1e6,
        "ours_img_per_s": ours_rate,
        "keras_fit_img_per_s": keras_rate,
        "keras_fit_32_img_per_s": keras_32_rate,
        "ours_over_keras_32": ours_rate / keras_32_rate,
        "ours_steps_per_call_mean": (sum(call.steps for call in all_calls if not call.summary)
                                     / max(1, sum(not call.summary for call in all_calls))),
        "matmul_gflops": gflops,
        "limit_img_per_s": limit_rate,
        "ours_over_keras": ours_rate / keras_rate,
        "ours_fraction_of_limit": ours_rate / limit_rate,
        "ours_over_keras_by_round": sorted(row["ours_img_per_s"] / row["keras_img_per_s"]
                                           for row in counted),
        "rounds_counted": len(counted),
        "only_quiet_rounds_counted": counted is quiet,
        "plain_step_ms": 1000 * plain_step,
        "summary_step_ms": 1000 * statistics.median(summary_steps) if summary_steps else None,
        "summary_steps_timed": len(summary_steps),
        "summary_cost": summary_cost,
        "our_pipeline_img_per_s": our_pipeline_rate,
        "guide_pipeline_img_per_s": guide_pipeline_rate,
        "pipeline_over_ours": our_pipeline_rate / ours_rate,
        "other_programs_cpu_cores": statistics.mean(r["other_programs_cpu_cores"] for r in rows),
        "rounds_detail": [{key: value for key, value in row.items() if key != "our_calls"}
                          for row in rows],
    }
    figures["targets"] = {
        "ours_over_keras >= 1.3": figures["ours_over_keras"] >= MIN_SPEEDUP_OVER_KERAS,
        "ours_fraction_of_limit >= 0.5": figures["ours_fraction_of_limit"] >= MIN_FRACTION_OF_LIMIT,
        "summary_cost <= 0.03": summary_cost <= MAX_SUMMARY_COST,
        "pipeline_over_ours >= 5": figures["pipeline_over_ours"] >= MIN_PIPELINE_HEADROOM,
    }
    return figures


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'round':>5} {'ours img/s':>11} {'keras img/s':>12} {'ours/keras':>11} "
              f"{'keras@32 img/s':>15} {'matmul GFLOP/s':>15} {'cores others took':>18}")
    print(f"{row['round']:>5} {row['ours_img_per_s']:>11.0f} {row['keras_img_per_s']:>12.0f} "
          f"{row['ours_img_per_s'] / row['keras_img_per_s']:>10.2f}x "
          f"{row['keras_32_img_per_s']:>15.0f} "
          f"{row['matmul_gflops']:>15.0f} {row['other_programs_cpu_cores']:>18.2f}", flush=True)


def print_summary(f: dict) -> None:
    def verdict(name):
        return "met" if f["targets"][name] else "MISSED"

    by_round = f["ours_over_keras_by_round"]
    summary_step = (f"summary step {f['summary_step_ms']:.0f} ms vs plain "
                    f"{f['plain_step_ms']:.0f} ms, {f['summary_steps_timed']} timed"
                    if f["summary_step_ms"] else "no summary step timed")
    lines = [
        ("ours (Trainer, summaries on), img/s", f"{f['ours_img_per_s']:.0f}", ""),
        ("keras compile + fit, img/s", f"{f['keras_fit_img_per_s']:.0f}", ""),
        (f"keras fit, steps_per_execution={KERAS_STRICTER_STEPS_PER_EXECUTION}, img/s",
         f"{f['keras_fit_32_img_per_s']:.0f}",
         f"ours / it: {f['ours_over_keras_32']:.2f}x (a stricter peer)"),
        ("limit (matmul rate / training FLOPs), img/s", f"{f['limit_img_per_s']:.0f}",
         f"{f['matmul_gflops']:.0f} GFLOP/s / {f['training_mflop_per_image']:.1f} MFLOP"),
        ("ours / keras", f"{f['ours_over_keras']:.2f}x",
         f">= 1.3x: {verdict('ours_over_keras >= 1.3')} (rounds: {by_round[0]:.2f}x to "
         f"{by_round[-1]:.2f}x, median {statistics.median(by_round):.2f}x)"),
        ("ours / limit", f"{f['ours_fraction_of_limit']:.1%}",
         f">= 50%: {verdict('ours_fraction_of_limit >= 0.5')}"),
        (f"summary cost (every {f['summary_every_steps']} steps)", f"{f['summary_cost']:.2%}",
         f"<= 3%: {verdict('summary_cost <= 0.03')} ({summary_step})"),
        ("our input pipeline alone, img/s", f"{f['our_pipeline_img_per_s']:.0f}",
         f"{f['pipeline_over_ours']:.1f}x ours; >= 5x: {verdict('pipeline_over_ours >= 5')}"),
        ("the guides' per-image pipeline alone, img/s", f"{f['guide_pipeline_img_per_s']:.0f}", ""),
        ("rounds counted", f"{f['rounds_counted']} of {f['rounds']}",
         f"those with other programs under {QUIET_CORES} cores"
         if f["only_quiet_rounds_counted"] else
         "ALL: too few rounds had the machine to themselves; figures are less certain"),
        ("cores other programs took, mean", f"{f['other_programs_cpu_cores']:.2f}",
         "0 on a quiet machine"),
    ]
    print(f"\n{'figure':<46} {'value':>10}  target / note")
    for name, value, note in lines:
        print(f"{name:<46} {value:>10}  {note}")


if __name__ == "__main__":
    raise SystemExit(main())
