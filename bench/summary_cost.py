"""What a summary step costs beyond a plain step, at batch 128 and at batch 1, side by side.

    .venv/bin/python -m bench.summary_cost [--rounds 8] [--plain-steps 10] [--summary-steps 3]

The tutorial net, built by app.train.Trainer on the synthetic set, for each batch size: after a
warm-up that traces every graph, rounds of `--plain-steps` plain steps in one call (train_steps,
as the loop runs them between summaries: the pace) and `--summary-steps` pairs of a plain step
and a summary step, each alone (train_step, as the loop runs a summary step), each timed to its
loss read back. The extra cost is the median of the pairs' differences (a neighbour's load that
comes and goes hits both steps of a pair); the trainer measures about the same to space its
summaries (app/train/cadence.py: a summary step less the pace, so also a call's overhead).
Batch 1 is this CPU's proxy for a GPU's pace (a step of a few ms).

For each, the figures say which spacing the trainer's rule chooses at runtime.summary_max_share,
and what share of the time the summaries take at summary_every_steps alone and at that spacing;
and, at a GPU's 0.5 ms step (the tutorial net at batch 128), the same for this extra cost.
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import tensorflow as tf

from app import config as configuration
from app.train import cadence
from app.train.trainer import Trainer
from bench import machine

BATCH_SIZES = (128, 1)
GPU_STEP_SECS = 0.0005  # the tutorial net's step at batch 128 on a GPU (DESIGN.md)


def measure(batch_size: int, folder: str, rounds: int, plain_steps: int,
            summary_steps: int) -> dict:
    config = configuration.load(overrides=[
        f"paths.train_dir={folder}/train-{batch_size}", f"paths.data_dir={folder}/data",
        "data.source=synthetic", "data.synthetic_train_examples=5000",
        f"train.batch_size={batch_size}", "train.max_steps=100000000"], environ={})
    trainer = Trainer(config)
    batches = iter(trainer.dataset_from(0))

    def plain_call() -> float:
        started = time.perf_counter()
        trainer.train_steps(batches, tf.constant(plain_steps)).numpy()
        return (time.perf_counter() - started) / plain_steps

    def step_alone(write_summaries: bool) -> float:
        images, labels = next(batches)
        started = time.perf_counter()
        trainer.train_step(images, labels, write_summaries=write_summaries).numpy()
        return time.perf_counter() - started

    paces, alone, summaries, extras = [], [], [], []
    with trainer.writer.as_default():
        plain_call(), step_alone(False), step_alone(True)  # traces every graph
        for _ in range(rounds):
            paces.append(plain_call())
            for _ in range(summary_steps):  # pairs, a plain step then a summary step, each alone
                alone.append(step_alone(False))
                summaries.append(step_alone(True))
                extras.append(summaries[-1] - alone[-1])
    trainer.writer.close()
    pace = statistics.median(paces)
    # The paired differences: a neighbour's load that comes and goes hits both steps of a pair.
    extra = max(0.0, statistics.median(extras))
    return {"batch_size": batch_size, "plain_step_ms": 1000 * pace,
            "plain_step_alone_ms": 1000 * statistics.median(alone),
            "summary_step_ms": 1000 * statistics.median(summaries), "extra_ms": 1000 * extra,
            "extra_in_plain_steps": extra / pace,
            **spacing_figures(config.runtime, extra, pace, ""),
            **spacing_figures(config.runtime, extra, GPU_STEP_SECS, "gpu_")}


def spacing_figures(runtime, extra: float, pace: float, prefix: str) -> dict:
    """The spacing the trainer's rule settles on at `pace` for this `extra` (one summary at a
    time, as it runs), and the summaries' share of the time without and with it."""
    spacing = runtime.summary_every_steps
    for _ in range(cadence.MAX_DOUBLINGS):
        widened = cadence.summary_spacing(runtime, spacing, extra, pace)
        if widened == spacing:
            break
        spacing = widened
    return {f"{prefix}share_every_{runtime.summary_every_steps}":
            share(extra, pace, runtime.summary_every_steps),
            f"{prefix}spacing": spacing, f"{prefix}share": share(extra, pace, spacing)}


def share(extra: float, pace: float, spacing: int) -> float:
    return extra / (spacing * pace + extra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--plain-steps", type=int, default=10)
    parser.add_argument("--summary-steps", type=int, default=3)
    arguments = parser.parse_args()
    print(machine.headline(machine.describe()))
    with tempfile.TemporaryDirectory(prefix="bench-summary-cost-") as folder:
        rows = [measure(batch_size, folder, arguments.rounds, arguments.plain_steps,
                        arguments.summary_steps) for batch_size in BATCH_SIZES]
    print_table(rows)
    print(json.dumps({"machine": machine.describe(), "rows": rows}))
    return 0


def print_table(rows: list[dict]) -> None:
    every = next(key for key in rows[0] if key.startswith("share_every_")).removeprefix(
        "share_every_")
    lines = [
        ("plain step (in a call of many)", lambda r: f"{r['plain_step_ms']:.2f} ms"),
        ("plain step (alone)", lambda r: f"{r['plain_step_alone_ms']:.2f} ms"),
        ("summary step (alone)", lambda r: f"{r['summary_step_ms']:.2f} ms"),
        ("extra cost (median of summary - plain)", lambda r: f"{r['extra_ms']:.2f} ms"),
        ("  in plain steps", lambda r: f"{r['extra_in_plain_steps']:.2f}"),
        (f"share at every {every} steps", lambda r: f"{r[f'share_every_{every}']:.2%}"),
        ("spacing the trainer chooses", lambda r: f"{r['spacing']} steps"),
        ("  share at that spacing", lambda r: f"{r['share']:.2%}"),
        (f"at a GPU's {GPU_STEP_SECS * 1000} ms step: share at every {every}",
         lambda r: f"{r[f'gpu_share_every_{every}']:.2%}"),
        ("  spacing the trainer chooses", lambda r: f"{r['gpu_spacing']} steps"),
        ("  share at that spacing", lambda r: f"{r['gpu_share']:.2%}"),
    ]
    width = max(len(name) for name, _ in lines)
    print(f"\n{'tutorial net':<{width}}  " + "  ".join(f"{'batch ' + str(r['batch_size']):>12}"
                                                       for r in rows))
    for name, figure in lines:
        print(f"{name:<{width}}  " + "  ".join(f"{figure(r):>12}" for r in rows))


if __name__ == "__main__":
    raise SystemExit(main())
