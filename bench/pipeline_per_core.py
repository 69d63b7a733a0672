"""The input pipeline alone, per CPU core, for both recipes: how many host cores would feed a GPU?

    .venv/bin/python -m bench.pipeline_per_core [--secs 10] [--rounds 3]

Two parts of each recipe, at its own batch size, on 50,000 synthetic images, with nothing
training:

    pipeline   the trainer's own pipeline (app/data/pipeline.py's training_dataset: a batch
               gathered by index from the uint8 images in memory, augmented as a whole by the
               recipe's augment unless the recipe augments in the training step), drawn as fast
               as it gives batches: the host's work
    augment    the recipe's augmentation alone, compiled, on one batch again and again: what a
               recipe that augments in the step adds to the device's work (on this CPU, the
               CPU's)

Each measurement is a process of its own pinned to N cores (sched_setaffinity, and TensorFlow's
thread pools sized to N), so that 1 core and all cores are measured alike. Rounds alternate
between the cases, so that a neighbour's load falls on all of them; the median round counts.

Then the host cores an H100 would keep busy with the pipeline at bench/RESULTS.md's estimated
pace (an ESTIMATE: no GPU here): estimated images/s / the pipeline's images/s on 1 core.

The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench import machine

# bench/RESULTS.md section 10's paper estimate for one H100 (bench.h100_estimate): not measured.
H100_ESTIMATED_IMAGES_PER_SEC = {"tutorial": 233_000, "fast": 141_000}
TRAIN_IMAGES = 50_000
WARMUP_BATCHES = 20


def measure_one(recipe_name: str, part: str, cores: int, secs: float) -> tuple[float, int]:
    """images/s of one part, in this process, pinned to `cores` cores, and the recipe's own
    batch size (train.batch_size auto) it was measured at. The parts:

        pipeline   the input pipeline as the trainer builds it (with the augmentation, unless
                   the recipe augments in the training step)
        augment    the recipe's augmentation alone, compiled (tf.function) as in the step, on
                   one uint8 batch again and again: on a GPU this is the device's work
    """
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)
    from app.data import pipeline

    recipe = recipe_named(recipe_name)
    batch_size = recipe.config.train.batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(TRAIN_IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=TRAIN_IMAGES, dtype=np.int32)
    if part == "pipeline":
        batches = iter(pipeline.training_dataset(images, labels, batch_size,
                                                 recipe.pipeline_augment(), seed=0))
        draw = lambda: next(batches)  # noqa: E731
    else:
        augment, batch = tf.function(recipe.augment), tf.constant(images[:batch_size])
        seed = tf.constant([0, 1])
        draw = lambda: augment(batch, seed).numpy()  # noqa: E731
    for _ in range(WARMUP_BATCHES):
        draw()
    drawn, started = 0, time.perf_counter()
    while time.perf_counter() - started < secs:
        draw()
        drawn += 1
    return drawn * batch_size / (time.perf_counter() - started), batch_size


def measure_in_own_process(recipe_name: str, part: str, cores: int,
                           secs: float) -> tuple[float, int]:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.pipeline_per_core", "--one", recipe_name, part, str(cores),
         "--secs", str(secs)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    images_per_sec, batch_size = finished.stdout.split()[-2:]
    return float(images_per_sec), int(batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secs", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=3, metavar=("RECIPE", "PART", "CORES"),
                        help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        recipe_name, part, cores = arguments.one
        print(*measure_one(recipe_name, part, int(cores), arguments.secs))
        return
    print(machine.headline(machine.describe()), flush=True)
    all_cores = machine.usable_cores()
    cases = [(recipe, part, cores) for recipe in H100_ESTIMATED_IMAGES_PER_SEC
             for part in ("pipeline", "augment") for cores in sorted({1, all_cores})]
    rounds, batch_size = {case: [] for case in cases}, {}
    for number in range(arguments.rounds):
        for case in cases:
            images_per_sec, batch_size[case[0]] = measure_in_own_process(*case, arguments.secs)
            rounds[case].append(images_per_sec)
        print(f"round {number + 1}: " + ", ".join(
            f"{recipe} {part} on {cores} core(s) {rounds[(recipe, part, cores)][-1]:,.0f} img/s"
            for recipe, part, cores in cases), flush=True)
    median = {case: round(statistics.median(values)) for case, values in rounds.items()}
    figures = {}
    for recipe, estimate in H100_ESTIMATED_IMAGES_PER_SEC.items():
        figures[recipe] = {
            "batch_size": batch_size[recipe],
            "augments_in_step": recipe_named(recipe).augments_in_step,
            **{f"{part}_images_per_sec_{cores}_core{'s' if cores > 1 else ''}":
               median[(name, part, cores)] for name, part, cores in cases if name == recipe},
            "h100_estimated_images_per_sec": estimate,
            "h100_host_cores_needed_estimate": round(estimate / median[(recipe, "pipeline", 1)],
                                                     1),
        }
    print(json.dumps({"machine": machine.describe(), "rounds": arguments.rounds,
                      "secs_per_measurement": arguments.secs, "recipes": figures}))


def recipe_named(recipe_name: str):
    """The recipe as the trainer makes it from a config choosing it, with every other default."""
    from app import config as configuration
    from app.model.recipes import for_config
    return for_config(configuration.load(None, [f"train.recipe={recipe_name}"], {}))


if __name__ == "__main__":
    main()
