"""The README's quick try, seed by seed, as it was (before: the synthetic set as generator 1 wrote
it, the tutorial's unclipped SGD) and as the appliance runs it now (after: generator 2's set,
tutorial.gradient_clip_norm at its default), side by side: which runs stop with exit 3, and which
fall back to the loss they started from.

    .venv/bin/python -m bench.quick_try_seeds [--seeds 20] [--steps 600] [--threads 2]

Each run is the quick try's config, its own CIFAR10_* variables (`CIFAR10_DATA_SOURCE=synthetic
CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS=50 CIFAR10_EVAL_NUM_EXAMPLES=1000`) over the defaults: the
tutorial recipe at its learning rate of 0.1, batch 128, 10,000 synthetic training images; with
train.seed and the initial weights seeded by the run's seed (keras.utils.set_random_seed), so that
a seed's two runs start from the same weights and see their batches in the same order. Each is
app.train.Trainer's own run, in this process (one training at a time, on --threads threads),
until --steps or until it stops with exit 3 (the loss not a number), which is the first fault
the quick try's user sees.

600 steps by default: with generator 1 the loss was seen to become NaN within 500 steps, and its
set was learned (99% of a batch right) by step ~190, after which its loss jumped back to
chance level again and again (at steps ~180-580 in 6 of 6 instrumented runs).

Printed: each run's result as it ends (all seeds after, then all before), then a table, a row
per seed, each side "finished, final loss X" (the loss of the last step, as the trainer's last
progress line gives it), "fell back" when that is not at least 0.3 below its first progress
line's (the network back at chance level, or beyond it on its way to NaN: it trained nothing that
lasted), or "exit 3 at step N"; then the
counts; the last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from app import config as configuration
from app.data import cifar10
from app.exit_codes import ExitCode
from app.train.trainer import Trainer, TrainingDiverged
from bench import machine
from tests.harness import log_lines

# The README's quick try: what its user sets in the shell.
QUICK_TRY = {"CIFAR10_DATA_SOURCE": "synthetic", "CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS": "50",
             "CIFAR10_EVAL_NUM_EXAMPLES": "1000"}
DIVERGED_AT = re.compile(r"NaN or infinite at step (?P<step>\d+)")


def generator_1_set(folder: Path, train_examples: int, test_examples: int, seed: int) -> None:
    """The synthetic set as generator 1 wrote it (app/data/cifar10.py before generator 2): each
    class a colour of its own and a stripe pattern, seen through independent noise per pixel."""
    rng = np.random.default_rng(seed)
    size, channels = cifar10.IMAGE_SIZE, cifar10.CHANNELS
    class_colours = rng.uniform(0.2, 1.0, size=(cifar10.NUM_CLASSES, channels))

    def records(count: int) -> np.ndarray:
        labels = rng.integers(0, cifar10.NUM_CLASSES, size=count)
        frequency = 1 + labels // 2
        vertical = (labels % 2).astype(bool)
        phase = rng.uniform(0, 2 * np.pi, size=count)
        position = np.arange(size) * 2 * np.pi / size
        waves = np.sin(frequency[:, None] * position[None, :] + phase[:, None])
        pattern = np.where(vertical[:, None, None], waves[:, None, :], waves[:, :, None])
        pattern = np.broadcast_to(pattern, (count, size, size))
        colour = class_colours[labels] * rng.uniform(0.6, 1.4, size=(count, 1))
        images = 128 + 48 * pattern[:, None] * colour[:, :, None, None]
        images += rng.normal(0, 64, size=images.shape)
        pixels = np.clip(images, 0, 255).astype(np.uint8).reshape(count, -1)
        return np.concatenate([labels.astype(np.uint8)[:, None], pixels], axis=1)

    per_file = np.array_split(np.arange(train_examples), len(cifar10.TRAIN_FILES))
    for name, indices in zip(cifar10.TRAIN_FILES, per_file):
        records(len(indices)).tofile(folder / name)
    records(test_examples).tofile(folder / cifar10.TEST_FILE)


@contextlib.contextmanager
def synthetic_generator(side: str):
    """The generator `prepare` writes the synthetic set with: generator 1 before, ours after."""
    ours = cifar10._write_synthetic_set
    if side == "before":
        cifar10._write_synthetic_set = generator_1_set
    try:
        yield
    finally:
        cifar10._write_synthetic_set = ours


class ProgressLines(logging.Handler):
    """The trainer's progress lines, as its user reads them."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.losses = []

    def emit(self, record):
        match = log_lines.TRAIN_STEP.match(record.getMessage())
        if match:
            self.losses.append(float(match["loss"]))


# Before: the tutorial's SGD as it was, unclipped.
UNCLIPPED = ["tutorial.gradient_clip_norm=null"]
FELL_BACK_WITHIN = 0.3  # of the first progress line's loss


def quick_try(folder: Path, side: str, seed: int, steps: int, threads: int) -> dict:
    config = configuration.load(overrides=[
        f"paths.train_dir={folder}/train-{side}-{seed}", f"paths.data_dir={folder}/data-{side}",
        f"train.max_steps={steps}", f"train.seed={seed}", f"runtime.threads={threads}",
        *(UNCLIPPED if side == "before" else [])], environ=QUICK_TRY)
    keras.utils.set_random_seed(seed)
    progress = ProgressLines()
    trainer_log = logging.getLogger("app.train.trainer")
    trainer_log.addHandler(progress)
    started = time.monotonic()
    try:
        with synthetic_generator(side):
            trainer = Trainer(config)
        trainer.run()
        result = {"exit": int(ExitCode.DONE), "first_loss": progress.losses[0],
                  "final_loss": progress.losses[-1]}
    except TrainingDiverged as error:
        result = {"exit": int(error.exit_code),
                  "diverged_at_step": int(DIVERGED_AT.search(str(error))["step"])}
    finally:
        trainer_log.removeHandler(progress)
        keras.backend.clear_session()
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def fell_back(result: dict) -> bool:
    return (result["exit"] == ExitCode.DONE
            and result["final_loss"] > result["first_loss"] - FELL_BACK_WITHIN)


def describe(result: dict) -> str:
    if result["exit"] == ExitCode.DIVERGED:
        return f"exit 3 at step {result['diverged_at_step']}"
    return (f"finished, final loss {result['final_loss']:.3f}"
            + (f" (fell back: it started at {result['first_loss']:.3f})" if fell_back(result)
               else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2, help="runtime.threads of each run")
    arguments = parser.parse_args()
    logging.getLogger("app").setLevel(logging.INFO)

    print(machine.headline(machine.describe()))
    print(f"the README's quick try ({' '.join(f'{k}={v}' for k, v in QUICK_TRY.items())}), "
          f"{arguments.steps} steps, seeds 0-{arguments.seeds - 1}, runtime.threads "
          f"{arguments.threads}, CPU\n")
    results = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory(prefix="bench-quick-try-") as folder:
        # All of one side, then all of the other: should the machine's time run out, the side
        # that shows whether the quick try now finishes is complete.
        for side in ("after", "before"):
            for seed in range(arguments.seeds):
                results[side][seed] = quick_try(Path(folder), side, seed, arguments.steps,
                                                arguments.threads)
                print(f"{side}, seed {seed}: {describe(results[side][seed])} "
                      f"({results[side][seed]['seconds']:.0f} s)", flush=True)
    rows = [{"seed": seed, "before": results["before"][seed], "after": results["after"][seed]}
            for seed in range(arguments.seeds)]
    print("\n| seed | before (generator 1, unclipped) | after (generator 2, clipped) |")
    print("| --- | --- | --- |")
    for row in rows:
        print(f"| {row['seed']} | {describe(row['before'])} | {describe(row['after'])} |")
    counts = {side: sum(row[side]["exit"] == ExitCode.DIVERGED for row in rows)
              for side in ("before", "after")}
    fallen = {side: sum(fell_back(row[side]) for row in rows) for side in ("before", "after")}
    print(f"\nexit 3: before {counts['before']} of {len(rows)}, after {counts['after']} of "
          f"{len(rows)}; fell back to the starting loss: before {fallen['before']}, after "
          f"{fallen['after']}; {sum(r[s]['seconds'] for r in rows for s in ('before', 'after')):.0f}"
          f" s of training in all")
    print(json.dumps({"machine": machine.describe(), "steps": arguments.steps,
                      "threads": arguments.threads, "diverged": counts, "fell_back": fallen,
                      "runs": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
