"""The whole appliance, time-compressed: does a run at a GPU's pace look right to its user?

    .venv/bin/python -m bench.pace [--secs 120] [--pace gpu cpu]

The real trainer, eval and TensorBoard under a real supervisord, started through entrypoint.sh
as `make run` starts them (tests/harness/native_stack.py), with the DEFAULT configuration but
for the synthetic data set, for --secs seconds of training, at two paces:

    gpu   train.batch_size 1: the tutorial net steps in a few milliseconds on this CPU, the
          nearest this machine comes to a GPU's ~0.5 ms step (a default 100,000-step run is
          over in minutes here, in about a minute on a GPU)
    cpu   the defaults as they are (batch 128, ~100 ms a step on 2 cores)

Then a SIGTERM to supervisord, as `docker stop` sends. One JSON line per pace:

    progress_lines_per_min   the trainer's "step N/M" lines
    summary_steps_per_min    the steps TensorBoard shows a histogram at (summary steps only)
    summary_share            the trainer's own measure of its summary steps' extra time, from
                             its progress record (null where the trainer does not measure it)
    checkpoints_per_min      "saved model.ckpt-N" lines
    mb_written_per_min       checkpoints saved x a checkpoint's size, plus the event files
    eval_points              evaluations in the run's eval/results.jsonl
    stop_secs                SIGTERM to every process gone
    tensorboard_lag_steps    the step the trainer stopped at minus the newest step of
                             TensorBoard's total_loss curve read just before the stop (so at
                             most the steps of the stop's own call more than the lag itself)

and the targets beside them: at most 6 progress lines a minute, summaries at most 3% of the
time, a stop within 2 s, at least 10 eval points in a 2-minute run.
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from app.volume import runs
from bench import machine
from tests.harness import log_lines
from tests.harness.native_stack import NativeStack
from tests.harness.waiting import wait_until

TARGETS = {"progress_lines_per_min": "<= 6", "summary_share": "<= 0.03", "stop_secs": "<= 2",
           "eval_points": ">= 10 (2-minute run)"}
PACES = {
    "gpu": {"train": {"batch_size": 1}},
    "cpu": {},
}
START_TIMEOUT = 300
HISTOGRAM_TAG = "conv1/activations"
SCALAR_TAG = "total_loss"


def config_for(pace: str) -> dict:
    config = {"data": {"source": "synthetic"}}
    for section, values in PACES[pace].items():
        config.setdefault(section, {}).update(values)
    return config


def measure(pace: str, secs: float, folder: Path) -> dict:
    stack = NativeStack(folder, config_for(pace))
    stack.start()
    try:
        wait_until(lambda: stack.assert_alive() or log_lines.find(log_lines.TRAIN_STEP,
                                                                   stack.log()),
                   timeout=START_TIMEOUT, what="the trainer's first progress line")
        training_from = time.monotonic()
        time.sleep(secs)
        minutes = (time.monotonic() - training_from) / 60
        progress = runs.read_progress(stack.run_dir) or {}
        shown = _tensorboard_steps(stack)
    finally:
        stopped = stack.stop()
    log = stack.log()
    saves = len(log_lines.find(log_lines.SAVED, log))
    stopped_at = log_lines.steps(log, log_lines.STOPPED_ON_REQUEST)
    return {
        "pace": pace,
        "secs": round(minutes * 60),
        "trainer_step": progress.get("step"),
        "sec_per_batch": progress.get("sec_per_batch"),
        "progress_lines_per_min": round(len(log_lines.find(log_lines.TRAIN_STEP, log)) / minutes,
                                        1),
        "summary_steps_per_min": round(len(shown["histogram"]) / minutes, 1),
        "summary_share": progress.get("summary_share"),
        "checkpoints_per_min": round(saves / minutes, 1),
        "mb_written_per_min": round(_bytes_written(stack.run_dir, saves) / 1e6 / minutes, 1),
        "eval_points": len(stack.eval_results()),
        "stop_secs": round(stopped["stopped_after"], 2),
        "tensorboard_lag_steps": (stopped_at[-1] - max(shown["scalar"])
                                  if stopped_at and shown["scalar"] else None),
        "targets": TARGETS,
    }


def _tensorboard_steps(stack: NativeStack) -> dict[str, list[int]]:
    """The steps TensorBoard draws of the run's loss curve and of a histogram, as a user who
    opens it now would see them."""
    shown = {}
    for kind, tag, key in (("scalars", SCALAR_TAG, "scalar"),
                           ("histograms", HISTOGRAM_TAG, "histogram")):
        try:
            shown[key] = stack.api.steps(kind, stack.run_dir.name, tag)
        except Exception as error:  # noqa: BLE001 - a figure missing is said, not fatal
            print(f"TensorBoard gave no {kind} for {tag}: {error}")
            shown[key] = []
    return shown


def _bytes_written(run_dir: Path, saves: int) -> int:
    """Checkpoints saved x the newest checkpoint's size (the rotation took the older ones away),
    plus the event files, eval's among them."""
    checkpoint_bytes = sum(path.stat().st_size for path in _newest_checkpoint_files(run_dir))
    events = sum(path.stat().st_size for path in run_dir.rglob("events.out.tfevents.*"))
    return saves * checkpoint_bytes + events


def _newest_checkpoint_files(run_dir: Path) -> list[Path]:
    steps = {int(match[1]) for path in run_dir.glob("model.ckpt-*.index")
             if (match := re.fullmatch(r"model\.ckpt-(\d+)\.index", path.name))}
    if not steps:
        return []
    return list(run_dir.glob(f"model.ckpt-{max(steps)}.*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secs", type=float, default=120.0)
    parser.add_argument("--pace", nargs="+", choices=sorted(PACES), default=["gpu", "cpu"])
    arguments = parser.parse_args()
    print(machine.headline(machine.describe()), flush=True)
    for pace in arguments.pace:
        with tempfile.TemporaryDirectory(prefix=f"pace-{pace}-") as folder:
            print(json.dumps(measure(pace, arguments.secs, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
