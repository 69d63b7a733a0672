"""Every line the appliance prints that a test or a benchmark reads, as one table of patterns.

A program prints `step 10/200, loss = ...`; under supervisord (the container, `make run`) the
same line reaches the console as `train | step 10/200, loss = ...` (docker/prefix_output.py puts
the program's name in front). Each pattern matches both: the program's own output and the
appliance's console, line by line or in a whole log (re.MULTILINE). Named groups hold the
figures (`step`, `max_steps`, ...). supervisord's own lines carry no prefix.
"""
from __future__ import annotations

import re


def _printed_by(program: str, line: str) -> re.Pattern:
    return re.compile(rf"^(?:{program} \| )?{line}", re.MULTILINE)


# -- train ----------------------------------------------------------------------------------
TRAIN_STEP = _printed_by("train", r"step (?P<step>\d+)/(?P<max_steps>\d+), loss = (?P<loss>\S+) ")
RESUMED = _printed_by("train", r"resumed from model\.ckpt-(?P<step>\d+)$")
FRESH_START = _printed_by("train", r"no checkpoint in (?P<run_dir>.+); starting from step 0$")
SAVED = _printed_by("train", r"saved model\.ckpt-(?P<step>\d+)$")
STOPPED_ON_REQUEST = _printed_by("train", r"stopped at step (?P<step>\d+) on request")
REACHED_MAX_STEPS = _printed_by("train", r"reached train\.max_steps = (?P<max_steps>\d+)$")
DISK_FULL = _printed_by("train", r"(?P<message>disk full: .*)$")
DISK_HAS_ROOM = _printed_by("train", r"disk has room again")
# What a save cut short left (files newer than the newest listed checkpoint, a _temp folder),
# removed as the trainer starts.
REMOVED_UNFINISHED_SAVE = _printed_by(
    "train", r"removed (?P<name>model\.ckpt-(?P<step>\d+)\S*): a save cut short")
# A resume that would change what the run learns, refused (exit 2), each key's old and new value.
LEARNED_CHANGE_REFUSED = _printed_by(
    "train", r"error: run '(?P<run>[^']+)' was trained with other values of what it learns: "
             r"(?P<changes>.+?) \(its record: ")
RUN_BUSY = _printed_by("train", r"error: run '(?P<run>[^']+)' \(.*\) is being trained already")
SWEEP_RUN_STARTED = _printed_by("train", r"sweep: run (?P<run>\S+) \((?P<number>\d+) of \d+\): ")
SWEEP_RUN_SKIPPED = _printed_by("train", r"sweep: run (?P<run>\S+) \((?P<number>\d+) of \d+\) "
                                         r"(?P<reason>.+); next$")
SWEEP_STOPPED = _printed_by("train", r"sweep: stopped during run (?P<run>\S+);")
SWEEP_DONE = _printed_by("train", r"sweep: all (?P<runs>\d+) runs done")

# -- eval: a line about one run starts with the run's name in brackets --------------------------
PRECISION = _printed_by("eval", r"\[(?P<run>[^]]+)\] precision @ 1 = (?P<precision>[0-9.]+) "
                                r"\(step (?P<step>\d+)")
SKIPPED = _printed_by("eval", r"\[(?P<run>[^]]+)\] skipped model\.ckpt-(?P<step>\d+)")
# Eval behind a trainer: it evaluates the newest waiting checkpoint and passes over the older ones
# (`last` is absent when there was one).
SKIPPED_WAITING = _printed_by(
    "eval", r"\[(?P<run>[^]]+)\] skipped (?P<count>\d+) older checkpoints? waiting "
            r"\(steps? (?P<first>\d+)(?:\.\.(?P<last>\d+))?\)")
SET_ASIDE = _printed_by("eval", r"\[(?P<run>[^]]+)\] evaluated up to its max_steps")
# Eval keeps running: it looks for runs and checkpoints for as long as the appliance runs.
WATCHING = _printed_by("eval", r"watching (?P<train_dir>.+) for the checkpoints of every run")
EVAL_IDLE = _printed_by("eval", r"every run is evaluated up to its max_steps \((?P<runs>.+)\); "
                                r"watching for new checkpoints")
EVAL_DISK_FULL = _printed_by("eval", r"(?P<message>disk full: .*)$")
EVAL_DISK_HAS_ROOM = _printed_by("eval", r"disk has room again")

# -- any program ------------------------------------------------------------------------------
# The first program to start on a volume of the old layout (one run at its root) moves it.
MOVED_OLD_LAYOUT = re.compile(r"^(?:(?P<program>train|eval|tensorboard) \| )?moved the run at the "
                              r"root of (?P<train_dir>.+) into (?P<run_dir>.+) \(runs are folders",
                              re.MULTILINE)

# -- data -----------------------------------------------------------------------------------
DATA_SPLIT = _printed_by("data", r"(?P<split>train|test): (?P<images>[\d,]+) images in ")

# -- any program, before it starts: the config refused (exit 2) ----------------------------------
CONFIG_ERROR = re.compile(r"^config error: (?P<source>.+?): (?P<message>(?:unknown key|expected|"
                          r"line \d+: ).+)$", re.MULTILINE)

# -- the console under supervisord ------------------------------------------------------------
PROGRAM_PREFIX = re.compile(r"^(?P<program>train|eval|tensorboard|data) \| ")
SUPERVISORD_OWN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
SPAWNED = re.compile(r"spawned: '(?P<program>\w+)' with pid (?P<pid>\d+)")
EXITED = re.compile(r"exited: (?P<program>\w+) \((?P<how>.+?)\)")


def find(pattern: re.Pattern, text: str, **groups) -> list[re.Match]:
    """The lines of `text` that match `pattern` with these values of its named groups:
    find(SAVED, log, step=50)."""
    return [match for match in pattern.finditer(text)
            if all(match[name] == str(value) for name, value in groups.items())]


def steps(text: str, pattern: re.Pattern = TRAIN_STEP) -> list[int]:
    """The `step` of every line of `text` that matches `pattern` (the trainer's step lines)."""
    return [int(match["step"]) for match in pattern.finditer(text)]
