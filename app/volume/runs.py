"""Runs: folders of the volume, one per training run, side by side in one TensorBoard.

Each run is <train_dir>/<run> (paths.run), TensorBoard's run `<run>`, with its eval beside it as
`<run>/eval`; what a run's folder holds is drawn in app/volume/layout.py. Here: a run's name, its
folder, the one trainer per run (its lock), and what the trainer tells eval and `report` (its
record and its progress).

A run's name is a folder name: letters, digits, `.`, `_` and `-`, not starting with `.`. The
volume's root holds nothing but runs; a volume from before runs had folders, one run at its root,
is moved into the folder of `paths.run` the first time any program starts on it (app/compat.py),
so that TensorBoard shows it as a run with its metrics.

Train and eval share nothing but these files: the trainer writes run.yaml and progress.json, eval
reads them to know how to build each run's model and when the run is done. starts.jsonl is the
run's history for its users: every start of its trainer, and what it changed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from pathlib import Path

import yaml

from app.exit_codes import AppError
from app.volume import layout
from app.volume.atomic import write_text_atomically

NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
# What a run may not be called: the folders a run of the old layout kept at the volume's root
# (app/compat.py moves them into a run's folder).
RESERVED_NAMES = frozenset({layout.EVAL_FOLDER, layout.EXPORT_FOLDER})


class RunBusy(AppError):
    """Another trainer trains this run."""


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a run (a folder of the volume), or None if it can."""
    if not NAME.fullmatch(name):
        return ("a run's name is its folder's: 1-100 letters, digits, '.', '_' or '-', not "
                "starting with '.' (no '/', no '..', no spaces)")
    if name in RESERVED_NAMES:
        return f"'{name}' is kept for the folders of a run, not a run"
    return None


def parse_reference(reference: str) -> tuple[str, int | None]:
    """A checkpoint of a run as train.init_from names it: `RUN` (its newest) or `RUN@STEP` (its
    newest at or before STEP). Check it with reference_problem first."""
    run, _, step = reference.partition("@")
    return run, int(step) if step else None


def reference_problem(reference: str) -> str | None:
    """Why `reference` names no run's checkpoint, or None if it does."""
    run, at, step = reference.partition("@")
    if problem := name_problem(run):
        return problem
    if at and not step.isdigit():
        return f"the step after '@' must be a whole number, not '{step}'"
    return None


def folder(train_dir, run: str) -> Path:
    return Path(train_dir) / run


def eval_folder(train_dir, run: str) -> Path:
    return folder(train_dir, run) / layout.EVAL_FOLDER


def with_checkpoints(train_dir) -> list[str]:
    """The runs of the volume that have checkpoints, by name."""
    root = Path(train_dir)
    if not root.is_dir():
        return []
    return sorted(path.parent.name for path in root.glob(f"*/{layout.CHECKPOINT_STATE_FILE}")
                  if name_problem(path.parent.name) is None)


# -- one trainer per run ------------------------------------------------------------------------

def hold_trainer_lock(run_folder: Path):
    """Takes the run's trainer lock for the life of this process, or raises RunBusy. The kernel
    lets go of it when the process ends, however it ends: a kill -9 leaves no stale lock."""
    run_folder.mkdir(parents=True, exist_ok=True)
    lock = open(run_folder / layout.TRAINER_LOCK_FILE, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise RunBusy(f"run '{run_folder.name}' ({run_folder}) is being trained already, by "
                      f"{holder}; one trainer per run: give this one another paths.run") from None
    lock.truncate(0)
    lock.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
    lock.flush()
    return lock  # kept open by the caller: closing it would let go


def is_training(run_folder: Path) -> bool:
    """Whether a trainer holds the run's lock now."""
    try:
        with open(run_folder / layout.TRAINER_LOCK_FILE) as lock:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def any_training(train_dir) -> bool:
    """Whether a trainer holds the lock of any run of the volume now, a run with no checkpoint
    yet included."""
    root = Path(train_dir)
    return root.is_dir() and any(is_training(lock.parent)
                                 for lock in root.glob(f"*/{layout.TRAINER_LOCK_FILE}"))


# -- what the trainer tells eval and report -----------------------------------------------------

def write_record(run_folder: Path, config_yaml: str) -> None:
    write_text_atomically(run_folder / layout.RUN_RECORD_FILE, config_yaml)


def read_record(run_folder: Path) -> dict | None:
    """The configuration the run's trainer last started with, as a dict; None if unknown."""
    try:
        return yaml.safe_load((run_folder / layout.RUN_RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def append_start(run_folder: Path, start: dict) -> None:
    """Adds one start of the run's trainer to its starts.jsonl, on disk before training goes on."""
    with open(run_folder / layout.STARTS_FILE, "a", encoding="utf-8") as starts:
        starts.write(json.dumps(start) + "\n")
        starts.flush()
        os.fsync(starts.fileno())


def read_starts(run_folder: Path) -> list[dict]:
    """Every start the run's starts.jsonl records, oldest first (a line a kill cut short left
    out); empty for a run trained before starts were recorded."""
    try:
        lines = (run_folder / layout.STARTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    starts = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            starts.append(json.loads(line))
    return starts


def write_progress(run_folder: Path, step: int, max_steps: int, examples_per_sec: float,
                   sec_per_batch: float, steps_per_call: float,
                   summary_share: float | None = None) -> None:
    """Where the trainer is, at its last progress line: steps_per_call is how many steps its calls
    into the graph ran on average since it started, summary_share the part of its time its summary
    steps took beyond a plain step's (null before one was measured)."""
    write_text_atomically(run_folder / layout.PROGRESS_FILE, json.dumps({
        "step": step, "max_steps": max_steps, "examples_per_sec": round(examples_per_sec, 1),
        "sec_per_batch": round(sec_per_batch, 4), "steps_per_call": round(steps_per_call, 1),
        "summary_share": None if summary_share is None else round(summary_share, 4),
        "updated_at": time.time()}) + "\n")


def read_progress(run_folder: Path) -> dict | None:
    try:
        return json.loads((run_folder / layout.PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None

