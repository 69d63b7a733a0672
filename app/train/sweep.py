"""A sweep: the runs that the config's `sweep:` lists, trained one after another, each its own run.

    sweep:
      - run: lr-0.05
        set: {tutorial.initial_learning_rate: 0.05}
      - run: lr-0.2
        set: {tutorial.initial_learning_rate: 0.2}

`python -m app train` with a sweep trains each entry in turn, as a trainer of its own (a child
process, `python -m app train --sweep-run NAME`, so that each run starts from a clean TensorFlow):
the run's folder, its checkpoints, its summaries and HParams row are those of any run. A run whose
newest checkpoint is at its max_steps is done and skipped, so after a restart the sweep goes on
where it was, the run in progress resuming from its checkpoint; a run that diverged is marked so
in its folder (app/volume/layout.py) and not tried again. The runs go one after another rather
than one per GPU: each then trains on all of the machine's GPUs (MirroredStrategy), eval and
TensorBoard keep up with one run at a time, and the curves come in the order the sweep lists them.

The list itself, each run checked in the whole configuration it makes before anything starts,
is app/config/sweep.py's: here config.sweep's entries are trained.

A stop (SIGTERM) reaches the run in training, which saves and exits; the sweep then ends without
starting the next one.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys

from app.volume import checkpoints, layout, runs
from app.exit_codes import ExitCode

log = logging.getLogger(__name__)


def train_all(config, command_line: list[str]) -> int:
    """Trains every run of config.sweep that is not done yet. `command_line` is what the trainer
    was started with (--config, --set), handed on to each run's trainer."""
    entries = config.sweep
    child = None
    stop_requested = False

    def request_stop(signum, _frame):
        nonlocal stop_requested
        stop_requested = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # already sent to the group by supervisord: harmless

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info(f"sweep of {len(entries)} runs: {', '.join(entry.run for entry in entries)}")
    for number, entry in enumerate(entries, start=1):
        folder = runs.folder(config.paths.train_dir, entry.run)
        if reason := _why_done(folder, entry.config.train.max_steps):
            log.info(f"sweep: run {entry.run} ({number} of {len(entries)}) {reason}; next")
            continue
        changes = ", ".join(f"{key}={value}" for key, value in entry.changes) or "no changes"
        log.info(f"sweep: run {entry.run} ({number} of {len(entries)}): {changes}")
        child = subprocess.Popen([sys.executable, "-m", "app", "train", *command_line,
                                  "--sweep-run", entry.run])
        code = child.wait()
        if stop_requested:
            log.info(f"sweep: stopped during run {entry.run}; a restart goes on from there")
            return ExitCode.DONE
        if code == ExitCode.DIVERGED:
            log.info(f"sweep: run {entry.run} diverged; going on with the next")
            (folder / layout.DIVERGED_MARK).write_text("the loss became NaN; the sweep moved on\n")
        elif code != ExitCode.DONE:
            log.error(f"error: sweep: the trainer of run {entry.run} exited {code}")
            return code
    log.info(f"sweep: all {len(entries)} runs done")
    return ExitCode.DONE


def _why_done(folder, max_steps: int) -> str | None:
    if (folder / layout.DIVERGED_MARK).exists():
        return "diverged earlier"
    newest = checkpoints.newest(folder)
    if newest is not None and checkpoints.step_of(newest) >= max_steps:
        return f"is done (step {checkpoints.step_of(newest)} of {max_steps})"
    return None
