"""Faults: the appliance under what happens to it on a shared machine, with figures.

    .venv/bin/python -m bench.faults [--size full|quick] [--only NAME[,NAME...]] [--seed N]

Each scenario runs the real thing: the three programs under supervisord, started through
entrypoint.sh as `make run` does (tests/fixtures/native_stack.py), on the synthetic set; the
container scenario builds the image with the container tests' podman harness. Each is one function
that takes a work folder and a size and returns an Outcome: its figures, and `faults`, one line for
every promise the appliance broke (empty when it held). tests/faults runs the quick size in CI.

  crash_loop         kill -9 the trainer at random moments; it still reaches max_steps, never
                     goes back further than its last checkpoint, every checkpoint restores, and
                     eval never crashes
  graceful_stop      SIGTERM to supervisord (what `docker stop` sends) at random moments: each
                     time a checkpoint at the step reached, written within docker's grace period
  eval_race          a checkpoint every step, keep_checkpoints 2, eval polling without pause
  bad_configs        a corpus of malformed configs: exit 2 naming the key or line, nothing
                     started, nothing written (natively; `container` runs it through the image)
  changed_model      train.model changed on a train_dir that holds a run: refused, run kept
  bad_data           damaged, short or missing batch files, a download with the wrong MD5
  full_disk          train_dir on a small tmpfs that fills up, then space is freed
  neighbours         TensorBoard and eval killed: supervisord restarts them, training goes on
  container          the image: non-root processes, one port, a private control socket, no
                     secret nor credential in any layer, the bad configs through its entrypoint

The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import native_stack  # noqa: E402  (the test suite's own way of starting the stack)
from native_stack import ENTRYPOINT, NativeStack, processes_in_session  # noqa: E402

from bench import machine  # noqa: E402

# `docker stop` sends SIGTERM, then SIGKILL after this many seconds (its default -t).
DOCKER_STOP_GRACE_SECS = 10
EXIT_BAD_INPUT = 2


@dataclasses.dataclass(frozen=True)
class Size:
    kills: int          # crash_loop: kill -9s of the trainer
    stops: int          # graceful_stop: SIGTERMs to the stack
    stop_within_secs: float  # graceful_stop: the latest moment into training a stop comes
    race_secs: float    # eval_race: seconds of a checkpoint every step


FULL = Size(kills=20, stops=10, stop_within_secs=60, race_secs=60)
QUICK = Size(kills=5, stops=3, stop_within_secs=10, race_secs=20)


@dataclasses.dataclass
class Outcome:
    name: str
    figures: dict
    faults: list[str]   # one line per broken promise; empty when the appliance held
    seconds: float = 0.0


class ScenarioError(RuntimeError):
    """The scenario itself could not go on (something never happened in time)."""


# ---------------------------------------------------------------------------------------------
# The stack and its log
# ---------------------------------------------------------------------------------------------

def stack_config(**sections) -> dict:
    """The native stack's small synthetic config, with some keys of some sections changed."""
    config = {name: dict(keys) for name, keys in native_stack.SMALL_CONFIG.items()}
    for name, keys in sections.items():
        config.setdefault(name, {}).update(keys)
    return config


SPAWNED = re.compile(r"spawned: '(\w+)' with pid (\d+)")
EXITED = re.compile(r"exited: (\w+) \((.+?)\)")
STEP = re.compile(r"^train \| step (\d+)/\d+,")
RESUMED = re.compile(r"^train \| (?:resumed from model\.ckpt-(\d+)$|no checkpoint in .*; starting "
                     r"from step 0)")


@dataclasses.dataclass
class Life:
    """One run of a supervised program, from supervisord's `spawned` line to its `exited`."""
    wrapper_pid: int             # docker/prefix_output.py, which supervisord started
    resumed_step: int | None = None
    last_step: int | None = None
    exit: str | None = None      # supervisord's words: "terminated by SIGKILL; not expected"

    @property
    def reached(self) -> int | None:
        """The highest step this life is known to have completed (or restored)."""
        steps = [s for s in (self.resumed_step, self.last_step) if s is not None]
        return max(steps) if steps else None


class StackLog:
    """Follows the stack's log as it grows: every line, and the lives of each program."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.lines: list[str] = []
        self.lives: dict[str, list[Life]] = {}

    def update(self) -> list[str]:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        new = [line.decode(errors="replace") for line in complete]
        for line in new:
            self._follow(line)
        self.lines += new
        return new

    def _follow(self, line: str) -> None:
        if match := SPAWNED.search(line):
            self.lives.setdefault(match[1], []).append(Life(int(match[2])))
        elif (match := EXITED.search(line)) and self.lives.get(match[1]):
            self.lives[match[1]][-1].exit = match[2]
        elif self.lives.get("train"):
            life = self.lives["train"][-1]
            if match := STEP.match(line):
                life.last_step = int(match[1])
            elif match := RESUMED.match(line):
                life.resumed_step = int(match[1] or 0)

    def wait(self, condition, timeout: float, what: str, interval: float = 0.02):
        """wait_until, reading the lines written meanwhile before each look."""
        def updated_condition():
            self.update()
            return condition()
        return wait_until(updated_condition, timeout, what, interval)

    def current(self, program: str) -> Life | None:
        self.update()
        lives = self.lives.get(program)
        return lives[-1] if lives else None

    def matching(self, pattern: str) -> list[re.Match]:
        self.update()
        return [m for line in self.lines if (m := re.search(pattern, line))]

    def unexpected_exits(self, program: str) -> list[str]:
        """supervisord's `exited` lines for program that it did not expect: crashes."""
        return [m[0] for m in self.matching(rf"exited: {program} \((.+?)\)")
                if "not expected" in m[1]]


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScenarioError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def program_pid(life: Life, timeout: float = 30) -> int:
    """The program itself (`python -m app train`), the child of its prefix_output.py wrapper."""
    children = wait_until(lambda: child_pids(life.wrapper_pid), timeout,
                          f"the child of pid {life.wrapper_pid}", interval=0.01)
    return children[0]


# ---------------------------------------------------------------------------------------------
# Checkpoints on disk
# ---------------------------------------------------------------------------------------------

def listed_checkpoints(train_dir: Path) -> list[int]:
    """The steps of the checkpoints the `checkpoint` state file lists, oldest first."""
    state = train_dir / "checkpoint"
    if not state.exists():
        return []
    return [int(step) for step in re.findall(r'^all_model_checkpoint_paths: "model\.ckpt-(\d+)"',
                                             state.read_text(), re.M)]


def newest_listed(train_dir: Path) -> int | None:
    steps = listed_checkpoints(train_dir)
    return steps[-1] if steps else None


def restores(prefix: Path) -> str | None:
    """None if every variable of the checkpoint reads back (each tensor's checksum verified),
    else what went wrong."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError) as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
    return None


def audit_checkpoints(train_dir: Path) -> tuple[int, int, list[str]]:
    """(restorable, checkpoints, problems): how many of the checkpoints in train_dir (each
    model.ckpt-N.index) read back whole, and what else is wrong there: a checkpoint the state
    file lists but the disk lacks or the other way round, and what a save cut short left (a
    data file without its index, a _temp folder)."""
    problems = []
    prefixes = sorted(path.with_suffix("") for path in train_dir.glob("model.ckpt-*.index"))
    restorable = 0
    for prefix in prefixes:
        if (reason := restores(prefix)) is None:
            restorable += 1
        else:
            problems.append(f"{prefix.name} does not restore: {reason}")
    listed = set(listed_checkpoints(train_dir))
    unlisted = [p.name for p in prefixes if int(p.name.rsplit("-", 1)[1]) not in listed]
    if unlisted:
        problems.append(f"checkpoints the state file does not list (never rotated away): "
                        f"{unlisted}")
    missing = [step for step in listed if not (train_dir / f"model.ckpt-{step}.index").exists()]
    if missing:
        problems.append(f"the state file lists checkpoints that are not on disk: {missing}")
    partial = [path for path in train_dir.glob("model.ckpt-*.data-*")
               if Path(str(path).split(".data-")[0]) not in prefixes]
    partial += train_dir.glob("model.ckpt-*_temp*")
    problems += [f"a partial save left on disk: {path.name}" for path in partial]
    return restorable, len(prefixes), problems


# ---------------------------------------------------------------------------------------------
# 1. Crash loop
# ---------------------------------------------------------------------------------------------

def crash_loop(folder: Path, kills: int, seed: int = 0) -> Outcome:
    """kill -9 the trainer `kills` times at random moments: a quarter while it starts (importing
    TensorFlow, reading the data, restoring), a quarter as it begins a checkpoint save, the rest
    a random number of steps into training. Then lets it train to max_steps."""
    rng = random.Random(seed)
    every = 25
    # Each life trains at most 2 x `every` steps before its kill, so the kills all happen
    # before max_steps; the last stretch then trains undisturbed.
    max_steps = kills * 2 * every + 150
    config = stack_config(train={"max_steps": max_steps, "checkpoint_every_steps": every,
                                 "checkpoint_every_secs": 0, "log_every_steps": 1,
                                 "summary_every_steps": 100},
                          eval={"interval_secs": 2})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    faults: list[str] = []
    killed: list[dict] = []
    after_kills = {"restorable": 0, "total": 0, "partial_saves": 0}
    stack.start()
    try:
        for _ in range(kills):
            life = wait_until(lambda: _new_life(log, "train", killed), 120, "the trainer to start")
            pid = program_pid(life)
            when = rng.choice(["starting", "saving", "training", "training"])
            if when == "starting":
                time.sleep(rng.uniform(0.0, 8.0))
            else:
                log.wait(lambda: life.resumed_step is not None, 180, "the trainer to resume")
                if when == "saving":  # a save follows the log line of its step at once
                    target = (life.resumed_step // every + 1) * every
                else:
                    target = life.resumed_step + rng.randint(1, 2 * every)
                log.wait(lambda: (life.last_step or 0) >= target, 180, f"step {target}",
                         interval=0.005)
            os.kill(pid, signal.SIGKILL)
            log.wait(lambda: not alive(pid) and life.exit, 30, "supervisord to notice the kill")
            killed.append({"when": when, "life": life,
                           "checkpoint": newest_listed(stack.train_dir)})
            # What the kill left is what the next trainer resumes from (it spends seconds
            # importing TensorFlow before it touches a file).
            restorable, total, problems = audit_checkpoints(stack.train_dir)
            after_kills["restorable"] += restorable
            after_kills["total"] += total
            partial = [p for p in problems if p.startswith("a partial save")]
            after_kills["partial_saves"] += len(partial)
            faults += [f"after kill {len(killed)}: {p}" for p in problems if p not in partial]
        log.wait(lambda: log.matching(r"^train \| reached train\.max_steps"), 600,
                 f"the trainer to reach max_steps {max_steps}")
        reached_at, last = time.monotonic(), log.current("train")
        log.wait(lambda: last.exit, 120, "the trainer to exit after max_steps")
        exit_secs = time.monotonic() - reached_at
        if exit_secs > 5:
            faults.append(f"the trainer took {exit_secs:.0f} s to exit after reaching max_steps")
        wait_until(lambda: stack.program_states().get("eval") == "EXITED", 300,
                   "eval to evaluate the last checkpoint and exit", interval=1)
    finally:
        stack.stop()
    log.update()

    lives = log.lives["train"]
    lost = []
    for kill in killed:
        life = kill["life"]
        later = lives[lives.index(life) + 1:]
        resumed = next((l.resumed_step for l in later if l.resumed_step is not None), None)
        reached = life.reached if life.reached is not None else kill["checkpoint"] or 0
        if resumed is None:
            faults.append(f"no life after the kill at step {reached} ever resumed")
            continue
        if resumed < (kill["checkpoint"] or 0):
            faults.append(f"killed at step {reached} with model.ckpt-{kill['checkpoint']} listed, "
                          f"it resumed from step {resumed}: further back than its checkpoint")
        lost.append(max(0, reached - resumed))
    final = newest_listed(stack.train_dir)
    if final != max_steps:
        faults.append(f"the newest checkpoint is {final}, not max_steps {max_steps}")
    faults += [f"eval crashed: {line}" for line in log.unexpected_exits("eval")]
    restorable, total, problems = audit_checkpoints(stack.train_dir)
    faults += problems
    return Outcome("crash_loop", {
        "kills": len(killed),
        "kills_while_starting": sum(k["when"] == "starting" for k in killed),
        "steps_lost_per_kill_max": max(lost, default=0),
        "steps_lost_per_kill_mean": round(sum(lost) / len(lost), 1) if lost else 0,
        "checkpoint_every_steps": every,
        "reached_max_steps": final == max_steps,
        "restorable_checkpoints_after_each_kill": (f"{after_kills['restorable']}/"
                                                   f"{after_kills['total']}"),
        "partial_saves_left_by_kills": after_kills["partial_saves"],
        "restorable_checkpoints_at_the_end": f"{restorable}/{total}",
        "eval_crashes": len(log.unexpected_exits("eval")),
    }, faults)


def _new_life(log: StackLog, program: str, killed: list[dict]) -> Life | None:
    life = log.current(program)
    if life is None or life.exit or any(k["life"] is life for k in killed):
        return None
    return life



# ---------------------------------------------------------------------------------------------
# 2. Graceful stop
# ---------------------------------------------------------------------------------------------

def graceful_stop(folder: Path, stops: int, within_secs: float = 10, seed: int = 0) -> Outcome:
    """SIGTERM to supervisord, as `docker stop` sends it, `stops` times, each run resuming the
    one before: every third stop while the trainer starts, the others at a random moment in its
    first `within_secs` of training. Each time the checkpoint must be at the step reached,
    written within docker's grace."""
    rng = random.Random(seed)
    # Far more steps than a run lives, and no checkpoint but the one the stop writes.
    config = stack_config(train={"max_steps": 1_000_000, "checkpoint_every_steps": 0,
                                 "checkpoint_every_secs": 0, "log_every_steps": 1,
                                 "summary_every_steps": 100})
    faults: list[str] = []
    stop_seconds = []
    kept = 0
    previous = None  # the newest checkpoint before this run
    for number in range(stops):
        stack = NativeStack(folder, config)
        log = StackLog(stack.log_file)
        log.offset = stack.log_file.stat().st_size if stack.log_file.exists() else 0
        stack.start()
        try:
            trainer = log.wait(lambda: log.current("train"), 120, "the trainer to start")
            if number % 3 == 0:
                when = "starting"
                time.sleep(rng.uniform(0.0, 6.0))
            else:
                when = "training"
                log.wait(lambda: trainer.last_step is not None, 180, "a first step")
                time.sleep(rng.uniform(0.0, within_secs))
            log.update()
        finally:
            stopped = stack.stop()
        log.update()
        reached = trainer.reached if trainer.reached is not None else previous
        newest = newest_listed(stack.train_dir)
        stop_seconds.append(stopped["stopped_after"])
        what = f"stop {number + 1} ({when}, at step {reached})"
        if newest == reached:
            kept += 1
        else:
            faults.append(f"{what}: the newest checkpoint is {newest}, not the step reached")
        if stopped["stopped_after"] > DOCKER_STOP_GRACE_SECS:
            faults.append(f"{what}: took {stopped['stopped_after']:.1f} s, more than docker's "
                          f"{DOCKER_STOP_GRACE_SECS} s grace")
        if stopped["exit_code"] != 0 or stopped["left_running"]:
            faults.append(f"{what}: supervisord exited {stopped['exit_code']}, leaving "
                          f"{stopped['left_running'] or 'nothing'} running")
        if trainer.last_step is not None and not log.matching(
                rf"^train \| stopped at step {trainer.last_step} on request"):
            faults.append(f"{what}: the trainer did not say it stopped at step "
                          f"{trainer.last_step}")
        previous = newest
    return Outcome("graceful_stop", {
        "stops": stops,
        "checkpoint_at_step_reached": f"{kept}/{stops}",
        "slowest_stop_secs": round(max(stop_seconds), 2),
        "median_stop_secs": round(sorted(stop_seconds)[len(stop_seconds) // 2], 2),
        "grace_secs": DOCKER_STOP_GRACE_SECS,
    }, faults)


# ---------------------------------------------------------------------------------------------
# 3. Eval racing rotation
# ---------------------------------------------------------------------------------------------

def eval_race(folder: Path, seconds: float) -> Outcome:
    """A checkpoint every step, two kept, and eval looking again the moment it is done: the
    checkpoint eval picks is often rotated away before or while it reads it."""
    config = stack_config(train={"max_steps": 1_000_000, "checkpoint_every_steps": 1,
                                 "checkpoint_every_secs": 0, "keep_checkpoints": 2,
                                 "log_every_steps": 50, "summary_every_steps": 1000},
                          eval={"interval_secs": 0})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    stack.start()
    try:
        log.wait(lambda: log.matching(r"^train \| saved model\.ckpt-"), 180, "a first checkpoint")
        log.wait(lambda: log.matching(r"^eval \| watching"), 120, "eval to start watching")
        started = time.monotonic()
        saves_before = len(log.matching(r"^train \| saved model\.ckpt-"))
        time.sleep(seconds)
        raced = time.monotonic() - started
        saves = len(log.matching(r"^train \| saved model\.ckpt-")) - saves_before
    finally:
        stack.stop()
    log.update()
    evaluated = len(log.matching(r"^eval \| precision @ 1 = "))
    skipped = len(log.matching(r"^eval \| skipped model\.ckpt-"))
    faults = [f"eval crashed: {line}" for line in log.unexpected_exits("eval")]
    faults += [f"the trainer crashed: {line}" for line in log.unexpected_exits("train")]
    faults += [f"eval printed a traceback: {m.string}" for m in log.matching(r"^eval \| Traceback")]
    if not evaluated:
        faults.append("eval evaluated no checkpoint at all while the trainer rotated them")
    return Outcome("eval_race", {
        "race_secs": round(raced, 1),
        "checkpoints_written": saves,
        "checkpoints_evaluated": evaluated,
        "checkpoints_skipped": skipped,
        "eval_crashes": len(log.unexpected_exits("eval")),
    }, faults)


# ---------------------------------------------------------------------------------------------
# 4. Bad configs
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BadConfig:
    """One malformed configuration, as a user would hand it over."""
    name: str
    file: str | bytes | None   # the config file (CIFAR10_CONFIG); None: the default one
    names: str                 # what the message must name: the key, the line, the file
    env: dict = dataclasses.field(default_factory=dict)  # overrides; None removes a variable
    # What the case's folder must hold first: "a_file" (a plain file), "read_only" (a mounted
    # read-only folder), "config_dir" (a folder where the config file should be).
    setup: str = ""


def _section(name: str, **keys) -> str:
    return f"{name}:\n" + "".join(f"  {key}: {value}\n" for key, value in keys.items())


# "{here}" stands for the case's own folder: natively a temporary one, /faults in a container.
BAD_CONFIGS = [
    # YAML that does not parse
    BadConfig("unclosed bracket", "train: [1, 2\neval:\n  batch_size: 5\n", "line 2"),
    BadConfig("bad indentation", "train:\n  max_steps: 10\n batch_size: 32\n", "line 3"),
    BadConfig("tab indentation", "train:\n\tmax_steps: 10\n", "line 2"),
    BadConfig("unterminated quote", 'train:\n  model: "cnn\neval:\n  batch_size: 5\n', "line 2"),
    BadConfig("missing colon", "train\n  max_steps: 10\n", "line 2"),
    BadConfig("two documents", "train: {}\n---\neval: {}\n", "line 2"),
    BadConfig("control characters", "\x00\x01\x02train: {}\n", "line 1"),
    # YAML that parses, but is not a config
    BadConfig("a list instead of sections", "- train\n- eval\n", "line 1"),
    BadConfig("a section that is a number", "train: 5\n", "'train'"),
    BadConfig("a key set twice",
              _section("train", max_steps=10, batch_size=4) + "  max_steps: 20\n",
              "train.max_steps"),
    BadConfig("a section twice", _section("train", max_steps=10) + _section("eval", batch_size=5)
              + _section("train", batch_size=4), "'train'"),
    # unknown keys
    BadConfig("unknown section", _section("trian", max_steps=10), "trian"),
    BadConfig("misspelt key", _section("train", max_stpes=10), "train.max_stpes"),
    BadConfig("key in the wrong section", _section("eval", max_steps=10), "eval.max_steps"),
    BadConfig("misspelt override", None, "CIFAR10_TRAIN_MAX_STPES",
              env={"CIFAR10_TRAIN_MAX_STPES": "300"}),
    BadConfig("override of an unknown section", None, "CIFAR10_TRAINING_STEPS",
              env={"CIFAR10_TRAINING_STEPS": "300"}),
    # wrong types
    BadConfig("a word for a number", _section("train", max_steps="ten"), "train.max_steps"),
    BadConfig("a fraction for a whole number", _section("train", batch_size=32.5),
              "train.batch_size"),
    BadConfig("a word for a rate", _section("train", initial_learning_rate="fast"),
              "train.initial_learning_rate"),
    BadConfig("a port with its protocol", _section("tensorboard", port="6006/tcp"),
              "tensorboard.port"),
    BadConfig("a list for a word", _section("train", model="[cnn]"), "train.model"),
    BadConfig("a mapping for a number", _section("eval", num_examples="{all: true}"),
              "eval.num_examples"),
    BadConfig("an empty value", "train:\n  max_steps:\n", "train.max_steps"),
    BadConfig("a list for a path", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "[a, b]"}),
    BadConfig("not a number", _section("train", initial_learning_rate=".nan"),
              "train.initial_learning_rate"),
    BadConfig("a URL that is not one", _section("data", source="cifar10", url="cifar-10.tar.gz"),
              "data.url"),
    # booleans as strings, and a boolean where a word belongs
    BadConfig("quoted yes", _section("eval", use_moving_averages='"yes"'),
              "eval.use_moving_averages"),
    BadConfig("quoted false", _section("eval", export_best="'false'"), "eval.export_best"),
    BadConfig("maybe as a boolean override", None, "eval.export_best",
              env={"CIFAR10_EVAL_EXPORT_BEST": "maybe"}),
    BadConfig("off for a word", _section("train", xla="off"), "train.xla"),
    # zero or negative sizes
    BadConfig("zero steps", _section("train", max_steps=0), "train.max_steps"),
    BadConfig("negative batch", _section("train", batch_size=-32), "train.batch_size"),
    BadConfig("no checkpoints kept", _section("train", keep_checkpoints=0),
              "train.keep_checkpoints"),
    BadConfig("zero eval examples", _section("eval", num_examples=0), "eval.num_examples"),
    BadConfig("zero learning rate", _section("train", initial_learning_rate=0),
              "train.initial_learning_rate"),
    BadConfig("negative interval", _section("eval", interval_secs=-5), "eval.interval_secs"),
    BadConfig("empty test set", _section("data", synthetic_test_examples=0),
              "data.synthetic_test_examples"),
    BadConfig("port out of range", _section("tensorboard", port=70000), "tensorboard.port"),
    BadConfig("more eval examples than test images", _section("eval", num_examples=20000),
              "eval.num_examples"),
    # paths that cannot serve
    BadConfig("train_dir is a file", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "{here}/a_file"}, setup="a_file"),
    BadConfig("data_dir is a file", None, "paths.data_dir",
              env={"CIFAR10_PATHS_DATA_DIR": "{here}/a_file"}, setup="a_file"),
    BadConfig("train_dir below a file", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "{here}/a_file/train"}, setup="a_file"),
    BadConfig("train_dir on a read-only volume", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "{here}/read_only/train"}, setup="read_only"),
    BadConfig("data_dir on a read-only volume", None, "paths.data_dir",
              env={"CIFAR10_PATHS_DATA_DIR": "{here}/read_only/data"}, setup="read_only"),
    BadConfig("a NUL in a path", 'paths:\n  train_dir: "{here}/tr\\0ain"\n', "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": None}),
    # files that are no config at all
    BadConfig("empty file", "", "empty"),
    BadConfig("only comments", "# train:\n#   max_steps: 10\n", "empty"),
    BadConfig("binary junk", random.Random(7).randbytes(512),
              "not a text file"),
    BadConfig("saved as UTF-16", _section("train", max_steps=10).encode("utf-16"),
              "not a text file"),
    BadConfig("config is a directory", None, "is a directory",
              env={"CIFAR10_CONFIG": "{here}/config_dir"}, setup="config_dir"),
    BadConfig("config file missing", None, "not found",
              env={"CIFAR10_CONFIG": "{here}/no_such.yaml"}),
]


def bad_config_environment(case: BadConfig, here: str, config_file: str) -> dict[str, str]:
    """The CIFAR10_* variables for a case: its own folder for train_dir and data_dir, the
    synthetic source (should a config wrongly pass, nothing is downloaded), its overrides."""
    env = {"CIFAR10_PATHS_TRAIN_DIR": f"{here}/train", "CIFAR10_PATHS_DATA_DIR": f"{here}/data",
           "CIFAR10_DATA_SOURCE": "synthetic"}
    if case.file is not None:
        env["CIFAR10_CONFIG"] = config_file
    env.update(case.env)
    return {name: value.replace("{here}", here) for name, value in env.items()
            if value is not None}


def prepare_bad_config(case: BadConfig, folder: Path, here: str) -> None:
    """Writes the case's config file and makes what its setup names, in folder."""
    if case.file is not None:
        content = case.file if isinstance(case.file, bytes) else case.file.replace("{here}", here)
        (folder / "config.yaml").write_bytes(
            content if isinstance(content, bytes) else content.encode())
    if case.setup == "a_file":
        (folder / "a_file").write_text("not a folder\n")
    elif case.setup == "config_dir":
        (folder / "config_dir").mkdir()
    elif case.setup == "read_only":
        (folder / "read_only").mkdir()  # mounted read-only by whoever runs the case


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path below folder with its kind, size and modification time."""
    return {str(path.relative_to(folder)): (path.is_dir(), path.stat().st_size,
                                             path.stat().st_mtime_ns)
            for path in folder.rglob("*")}


def judge_bad_config(case: BadConfig, exit_code: int, output: str, before: dict,
                     after: dict, started: list[str]) -> str | None:
    """What is wrong with how the appliance met the case, or None."""
    if exit_code != EXIT_BAD_INPUT:
        return f"exit {exit_code}, not {EXIT_BAD_INPUT}: {output.strip()[-300:]}"
    if case.names not in output:
        return f"the message does not name {case.names!r}: {output.strip()[-300:]}"
    if started:
        return f"started {started}"
    if before != after:
        changed = sorted(set(before) ^ set(after)
                         | {path for path in before if before[path] != after.get(path)})
        return f"wrote {changed}"
    return None


def refuses_bad_config(case: BadConfig, folder: Path) -> str | None:
    """Runs entrypoint.sh natively with the case's config in a folder of its own (made here);
    returns what was wrong with how it met the case, or None."""
    folder.mkdir(parents=True)
    prepare_bad_config(case, folder, str(folder))
    read_only = folder / "read_only"
    if case.setup == "read_only":  # even root may not write there
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", read_only],
                       check=True)
    try:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("CIFAR10_")}
        env.update(bad_config_environment(case, str(folder), str(folder / "config.yaml")),
                   PYTHON=sys.executable,
                   APPLIANCE_SUPERVISOR_SOCKET=str(folder / "supervisor.sock"))
        before = snapshot(folder)
        process = subprocess.Popen([str(ENTRYPOINT)], cwd=folder, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # it took the config and started the appliance
            output = "(still running after 60 s)"
        # Anything still in the entrypoint's session was started by it.
        started = processes_in_session(process.pid)
        for pid in started:
            os.kill(pid, signal.SIGKILL)
        process.wait()
        after = snapshot(folder)
    finally:
        if case.setup == "read_only":
            subprocess.run(["umount", read_only], check=True)
    return judge_bad_config(case, process.returncode, output, before, after, started)


def bad_configs(folder: Path) -> Outcome:
    """Every case of the corpus through entrypoint.sh, natively."""
    faults = [f"{case.name}: {problem}" for number, case in enumerate(BAD_CONFIGS)
              if (problem := refuses_bad_config(case, folder / f"case-{number:02d}"))]
    passed = len(BAD_CONFIGS) - len(faults)
    return Outcome("bad_configs", {"bad_configs_refused": f"{passed}/{len(BAD_CONFIGS)}"}, faults)


def changed_model(folder: Path) -> Outcome:
    """A config edit on a train_dir that holds a run: train.model cnn -> resnet. The trainer
    must refuse (exit 2, naming train.model) and leave the run's checkpoints as they were, not
    start from step 0 and save over them."""
    settings = {"paths.train_dir": folder / "train", "paths.data_dir": folder / "data",
                "data.source": "synthetic", "data.synthetic_train_examples": 500,
                "data.synthetic_test_examples": 100, "eval.num_examples": 100,
                "train.batch_size": 32, "train.checkpoint_every_steps": 10,
                "train.max_steps": 20}

    def train(**changes) -> subprocess.CompletedProcess:
        overrides = [f"--set={key}={value}" for key, value in {**settings, **changes}.items()]
        return subprocess.run([sys.executable, "-m", "app", "train", *overrides], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                              text=True, timeout=300)

    first = train()
    if first.returncode != 0:
        raise ScenarioError(f"the first run failed: {first.stdout[-2000:]}{first.stderr[-2000:]}")
    def checkpoint_files() -> dict:
        return {path: value for path, value in snapshot(folder / "train").items()
                if path.startswith(("model.ckpt-", "checkpoint"))}

    before = checkpoint_files()
    changed = train(**{"train.model": "resnet", "resnet.width": 8, "train.max_steps": 40})
    faults = []
    if changed.returncode != EXIT_BAD_INPUT or "train.model" not in changed.stdout:
        faults.append(f"the trainer exited {changed.returncode} without naming train.model: "
                      f"{changed.stdout.strip()[-500:]}")
    if checkpoint_files() != before:
        faults.append("the run's checkpoints changed: the new model saved over them")
    restorable, total, problems = audit_checkpoints(folder / "train")
    return Outcome("changed_model", {"refused_with_exit": changed.returncode,
                                     "old_run_restorable": f"{restorable}/{total}"},
                   faults + problems)


# ---------------------------------------------------------------------------------------------
# 5. Bad data
# ---------------------------------------------------------------------------------------------

PUBLISHED_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # docker/config.yaml's data.md5


def _damage_truncate(batches: Path) -> str:
    path = batches / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1500])  # cut in the middle of a record
    return path.name


def _damage_grow(batches: Path) -> str:
    with open(batches / "test_batch.bin", "ab") as stream:
        stream.write(b"\0" * 100)
    return "test_batch.bin"


def _damage_garbage(batches: Path) -> str:
    path = batches / "data_batch_2.bin"
    path.write_bytes(random.Random(5).randbytes(path.stat().st_size))
    return path.name


def _damage_remove_test(batches: Path) -> str:
    (batches / "test_batch.bin").unlink()
    return "test_batch.bin"


def bad_data(folder: Path) -> Outcome:
    """Damaged data, each case through the whole appliance (entrypoint.sh) and the trainer
    alone (`python -m app train`, as supervisord restarts it): exit 2 naming the file, no
    supervisord, no checkpoint."""
    faults = []
    checked = 0
    synthetic = {"data": {"source": "synthetic", "synthetic_train_examples": 500,
                          "synthetic_test_examples": 100},
                 "eval": {"num_examples": 100, "batch_size": 50}, "train": {"max_steps": 20}}
    cases = {f"synthetic set: {name}": damage for name, damage in (
        ("a truncated batch file", _damage_truncate), ("a test batch too long", _damage_grow),
        ("garbage bytes", _damage_garbage), ("the test batch missing", _damage_remove_test))}
    for number, (name, damage) in enumerate(cases.items()):
        stack = NativeStack(_new_folder(folder / f"case-{number}"), synthetic)
        made = stack.run(str(ENTRYPOINT), "data", timeout=120)
        if made.returncode != 0:
            raise ScenarioError(f"cannot make the synthetic set: {made.stdout}{made.stderr}")
        names = damage(next(stack.data_dir.rglob("cifar-10-batches-bin")))
        checked += 1
        if problem := _refuses_data(stack, names):
            faults.append(f"{name}: {problem}")

    # The real source: a mounted folder without its test batch, and an archive that is not
    # CIFAR-10 (here a file: URL, as a mirror or a half-finished download would be).
    real = {"data": {"source": "cifar10"}, "eval": {"num_examples": 100}}
    stack = NativeStack(_new_folder(folder / "real-missing"), real)
    batches = stack.data_dir / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for number in range(1, 6):
        (batches / f"data_batch_{number}.bin").write_bytes(b"\0" * 3073 * 10)
    checked += 1
    if problem := _refuses_data(stack, "test_batch.bin"):
        faults.append(f"CIFAR-10 folder: the test batch missing: {problem}")

    archive = folder / "cifar-10-binary.tar.gz"
    subprocess.run(["tar", "-czf", archive, "-C", batches.parent, "cifar-10-batches-bin"],
                   check=True)
    stack = NativeStack(_new_folder(folder / "real-md5"), {**real, "data": {
        "source": "cifar10", "url": archive.as_uri(), "md5": PUBLISHED_MD5}})
    checked += 1
    if problem := _refuses_data(stack, "MD5"):
        faults.append(f"a download with the wrong MD5: {problem}")
    return Outcome("bad_data", {"bad_data_refused": f"{checked - len(faults)}/{checked}"}, faults)


def _new_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _refuses_data(stack: NativeStack, names: str) -> str | None:
    """What is wrong with how the appliance, then the trainer alone, met the damaged data."""
    for command in ([str(ENTRYPOINT)], [sys.executable, "-m", "app", "train"]):
        process = subprocess.Popen(command, cwd=stack.folder, text=True,
                                   env={**stack.env, "PYTHONPATH": str(REPO)},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            output = "(still running after 120 s)"
        started = processes_in_session(process.pid)
        for pid in started:
            os.kill(pid, signal.SIGKILL)
        process.wait()
        who = "the appliance" if command[0] == str(ENTRYPOINT) else "the trainer alone"
        if process.returncode != EXIT_BAD_INPUT:
            return f"{who} exited {process.returncode}, not 2: {output.strip()[-400:]}"
        if names not in output:
            return f"{who} did not name {names!r}: {output.strip()[-400:]}"
        if started or stack.socket_path.exists():
            return f"{who} started supervisord or left {started} running"
        if list(stack.train_dir.glob("model.ckpt-*")):
            return f"{who} trained on it: {sorted(p.name for p in stack.train_dir.iterdir())}"
    return None



# ---------------------------------------------------------------------------------------------
# 6. Full disk
# ---------------------------------------------------------------------------------------------

# Room for the run once the other file is gone: train's event file (~7 MB), three checkpoints of
# 8.5 MB (two kept, one being written) and eval's files (events, projector, export, ~12 MB).
FULL_DISK_SIZE_MB = 64
OTHERS_FILE_MB = 40       # what someone else keeps on the same disk, deleted later


def full_disk(folder: Path) -> Outcome:
    """train_dir on a small tmpfs (mounted here: run as root), most of it taken by someone
    else's file, while the stack trains. The trainer must say the disk is full and wait; the
    listed checkpoint must restore; once the file is deleted, training goes on, and a restart
    resumes from the newest checkpoint."""
    if os.geteuid() != 0:
        raise ScenarioError("full_disk mounts a tmpfs, which needs root")
    train_dir = folder / "train"
    train_dir.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FULL_DISK_SIZE_MB}m", "tmpfs",
                    train_dir], check=True)
    try:
        others_file = train_dir / "someone-elses-file"
        others_file.write_bytes(bytes(OTHERS_FILE_MB << 20))
        return _fill_and_free(folder, train_dir, others_file)
    finally:
        subprocess.run(["umount", train_dir], check=True)


def _fill_and_free(folder: Path, train_dir: Path, others_file: Path) -> Outcome:
    max_steps = 400
    config = stack_config(train={"max_steps": max_steps, "checkpoint_every_steps": 20,
                                 "keep_checkpoints": 2, "log_every_steps": 1})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    faults: list[str] = []
    figures: dict = {}
    stack.start()
    try:
        said = log.wait(lambda: log.matching(r"^train \| disk full: .*"), 300,
                        "the trainer to say the disk is full")[0][0]
        trainer = log.current("train")
        full_at = trainer.last_step
        figures["trainer_said"] = said.removeprefix("train | ")
        if str(train_dir) not in said:
            faults.append(f"the disk-full message does not name train_dir: {said}")
        listed = newest_listed(train_dir)
        figures["listed_checkpoint_when_full"] = listed
        if listed is None:
            faults.append("the disk filled before the first checkpoint; make the tmpfs larger")
        elif (reason := restores(train_dir / f"model.ckpt-{listed}")) is not None:
            faults.append(f"the listed model.ckpt-{listed} does not restore: {reason}")
        partial = sorted(p.name for p in train_dir.glob("model.ckpt-*_temp*"))
        if partial:
            faults.append(f"the failed save left {partial} taking space")
        time.sleep(3)
        log.update()
        if log.current("train") is not trainer:
            faults.append("the trainer exited while the disk was full: "
                          + "; ".join(log.unexpected_exits("train")))

        others_file.unlink()
        freed_at = time.monotonic()
        log.wait(lambda: log.matching(r"^train \| disk has room again"), 60,
                 "the trainer to notice the space")
        log.wait(lambda: (newest_listed(train_dir) or 0) > (listed or 0), 120,
                 "a checkpoint after the space was freed")
        figures["went_on_after_secs"] = round(time.monotonic() - freed_at, 1)
        figures["steps_lost"] = max(0, (full_at or 0) - (newest_listed(train_dir) or 0))

        # And a restart resumes from the newest checkpoint.
        before = newest_listed(train_dir)
        stack.supervisorctl("restart", "train")
        restarted = log.wait(lambda: (l := log.current("train")) is not trainer
                             and l.resumed_step is not None and l, 180,
                             "the restarted trainer to resume")
        expected = newest_listed(train_dir)  # the restart's own stop saves one more
        figures["restart_resumed_from"] = restarted.resumed_step
        if restarted.resumed_step != expected or expected < before:
            faults.append(f"the restart resumed from step {restarted.resumed_step}, not from the "
                          f"newest checkpoint, {expected}")
        log.wait(lambda: log.matching(r"^train \| reached train\.max_steps"), 300,
                 f"max_steps {max_steps}")
    finally:
        stack.stop()
    figures["eval_crashes_while_full"] = len(log.unexpected_exits("eval"))
    return Outcome("full_disk", figures, faults)



# ---------------------------------------------------------------------------------------------
# 7. Neighbours die
# ---------------------------------------------------------------------------------------------

def neighbours(folder: Path) -> Outcome:
    """kill -9 TensorBoard, then eval, while the trainer trains: supervisord brings each back,
    and the trainer neither restarts nor stalls."""
    config = stack_config(train={"max_steps": 1_000_000, "checkpoint_every_steps": 50,
                                 "log_every_steps": 1})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    faults: list[str] = []
    figures = {}
    stack.start()
    try:
        log.wait(lambda: log.current("train") and log.current("train").last_step is not None,
                 180, "the trainer's first step")
        trainer = log.current("train")
        wait_until(stack.tensorboard_answers, 120, "TensorBoard to answer", interval=0.5)
        for program in ("tensorboard", "eval"):
            victim = log.current(program)
            evals_watching = len(log.matching(r"^eval \| watching"))
            step_before = trainer.last_step
            killed_at = time.monotonic()
            os.kill(program_pid(victim), signal.SIGKILL)
            log.wait(lambda: log.current(program) is not victim, 60,
                     f"supervisord to start {program} again")
            if program == "tensorboard":
                working = stack.tensorboard_answers
            else:  # a new eval says so once it is set up and looks for checkpoints
                def working():
                    return len(log.matching(r"^eval \| watching")) > evals_watching
            wait_until(working, 120, f"{program} to work again", interval=0.2)
            figures[f"{program}_back_after_secs"] = round(time.monotonic() - killed_at, 1)
            log.update()
            figures[f"steps_trained_while_{program}_was_down"] = trainer.last_step - step_before
            if trainer.last_step <= step_before:
                faults.append(f"the trainer made no progress while {program} was restarted")
        if log.current("train") is not trainer:
            faults.append("the trainer was restarted too: " + "; ".join(
                log.unexpected_exits("train")))
    finally:
        stack.stop()
    return Outcome("neighbours", figures, faults)


# ---------------------------------------------------------------------------------------------
# 8. The container: who runs, what listens, what the image keeps
# ---------------------------------------------------------------------------------------------
# These take the container tests' own podman harness (tests/container/podman.py): `podman`, an
# IsolatedPodman with the image built in it, and `containers`, a TrackedContainers that removes
# what it started. tests/faults gets both from the harness's fixtures; container_scenarios()
# below builds its own.

APPLIANCE_PORT = 6006
SOCKET = "/tmp/cifar10-appliance-supervisor.sock"   # entrypoint.sh's default
CONTAINER_RUN = {  # a small synthetic run that keeps training while the checks look
    "CIFAR10_DATA_SOURCE": "synthetic", "CIFAR10_DATA_SYNTHETIC_TRAIN_EXAMPLES": "2000",
    "CIFAR10_DATA_SYNTHETIC_TEST_EXAMPLES": "500", "CIFAR10_EVAL_NUM_EXAMPLES": "500",
    "CIFAR10_TRAIN_BATCH_SIZE": "32", "CIFAR10_TRAIN_MAX_STEPS": "1000000",
    "CIFAR10_EVAL_INTERVAL_SECS": "5",
}
NOBODY = "65534:65534"


def running_appliance(podman, containers, volumes: dict | None = None):
    """Starts the appliance and waits until its three programs run (TensorBoard answers)."""
    container = containers.run(env=CONTAINER_RUN, volumes=volumes or {})
    probe = ("import urllib.request; urllib.request.urlopen("
             f"'http://127.0.0.1:{APPLIANCE_PORT}/', timeout=2)")
    wait_until(lambda: not container.is_running() or podman(
        "exec", container.name, "python3", "-c", probe, check=False).returncode == 0,
        300, "TensorBoard to answer inside the container", interval=2)
    if not container.is_running():
        raise ScenarioError(f"the appliance exited: {container.logs()[-3000:]}")
    return container


def process_users(podman, container) -> list[tuple[str, str]]:
    """(user, command) of every process in the container, as the host sees them."""
    listing = podman("top", container.name, "user", "args").stdout.splitlines()[1:]
    return [tuple(line.split(None, 1)) for line in listing if line.strip()]


def listening_ports(podman, container) -> set[int]:
    """The TCP ports something listens on inside the container (IPv4 and IPv6)."""
    tables = podman("exec", container.name, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    ports = set()
    for line in tables.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def socket_open_to_others(podman, container) -> str | None:
    """What another user in the container could do with supervisord's control socket."""
    attempt = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect('" + SOCKET + "');"
               "s.sendall(b'POST /RPC2 HTTP/1.0\\r\\nContent-Length: 0\\r\\n\\r\\n');"
               "print(s.recv(64))")
    result = podman("exec", "--user", NOBODY, container.name, "python3", "-c", attempt,
                    check=False)
    if result.returncode == 0:
        return f"uid 65534 talked to supervisord: {result.stdout.strip()}"
    if "PermissionError" not in result.stderr and "Permission denied" not in result.stderr:
        return f"unexpected answer: {result.stderr.strip()[-300:]}"
    return None


def processes_as_root(podman, container) -> list[str]:
    return [command for user, command in process_users(podman, container)
            if user in ("root", "0")]


def running_container_problems(podman, container) -> tuple[dict, list[str]]:
    """Who runs, what listens, and who may use supervisord's socket, in a running appliance."""
    users = process_users(podman, container)
    as_root = processes_as_root(podman, container)
    ports = listening_ports(podman, container)
    faults = [f"running as root: {command}" for command in as_root]
    if ports != {APPLIANCE_PORT}:
        faults.append(f"listening on TCP ports {sorted(ports)}, not just {APPLIANCE_PORT}")
    if problem := socket_open_to_others(podman, container):
        faults.append(f"supervisord's socket: {problem}")
    return {"non_root_processes": f"{len(users) - len(as_root)}/{len(users)}",
            "listening_tcp_ports": sorted(ports)}, faults


def root_owned_volume(folder: Path) -> Path:
    """What `docker run -v DIR:/cifar10_train` makes of a DIR that does not exist yet."""
    made = folder / "made_by_the_engine"
    made.mkdir(parents=True)
    os.chown(made, 0, 0)
    return made


def image_layers(podman, image: str) -> list[Path]:
    driver = podman.inspect("image", image)["GraphDriver"]["Data"]
    return [Path(layer) for layer in [driver["UpperDir"], *driver.get("LowerDir", "").split(":")]
            if layer]


def _pem_blocks(text: str) -> set[str]:
    return set(re.findall(r"-----BEGIN CERTIFICATE-----\n(.+?)\n-----END CERTIFICATE-----",
                          text, re.S))


def ca_secret_traces(podman, image: str, ca_bundle: Path | None) -> tuple[int, list[str]]:
    """Where the CA bundle handed to the build as a secret left a trace in the image: a layer,
    a history line, an environment variable. Returns how many of the bundle's certificates
    could be told apart from Debian's own (in the image on purpose), and the traces."""
    traces = []
    details = podman.inspect("image", image)
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    metadata = f"{json.dumps(details['Config'])}\n{history}"
    layers = image_layers(podman, image)
    # The bundle's certificates that Debian's bundle in the image lacks (a re-signing proxy's
    # CA): a copy of one anywhere in a layer is the secret left behind.
    own_certificates: set[str] = set()
    if ca_bundle:
        in_image = set()
        for layer in layers:
            debian_bundle = layer / "etc/ssl/certs/ca-certificates.crt"
            if debian_bundle.is_file():
                in_image |= _pem_blocks(debian_bundle.read_text(errors="replace"))
        own_certificates = _pem_blocks(ca_bundle.read_text(errors="replace")) - in_image
    markers = [block.splitlines()[len(block.splitlines()) // 2] for block in own_certificates]
    for marker in markers[:20]:
        found = subprocess.run(["grep", "-rlF", "--", marker, *map(str, layers)],
                               capture_output=True, text=True).stdout.split()
        if found:
            traces.append(f"a certificate of the CA bundle secret is in {found[:3]}")
            break
    if any(marker in metadata for marker in markers):
        traces.append("a certificate of the CA bundle secret is in the image's metadata")
    left = [str(path) for layer in layers for path in layer.glob("run/secrets/*")]
    if left:
        traces.append(f"the build secret's mount point kept files: {left}")
    # (The history may name these: the Dockerfile's RUN line sets PIP_CERT for its own shell.)
    for setting in details["Config"].get("Env") or []:
        if setting.startswith(("PIP_CERT=", "REQUESTS_CA_BUNDLE=", "SSL_CERT_FILE=")):
            traces.append(f"the image's environment points at the CA secret: {setting}")
    return len(own_certificates), traces


CREDENTIAL_FILES = {".netrc", ".git-credentials", ".pypirc", ".npmrc", "id_rsa", "id_ecdsa",
                    "id_ed25519", ".env"}
TOKEN_SHAPES = (r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}"
                r"|glpat-[A-Za-z0-9_-]{20}|xox[abp]-[A-Za-z0-9-]{10,}|://[^/\s:@]+:[^/\s@]+@")
# Where the image's own files are. The installed packages are left out: their test data holds
# sample keys.
OWN_TREES = ["app", "etc", "root", "home", "tmp", "var/tmp", "opt/cifar10", "cifar10_train",
             "cifar10_data", "run"]


def credential_traces(podman, image: str) -> list[str]:
    """Credentials and tokens in the image: files that hold them, key- and token-shaped text in
    its own files, secret-named settings in its metadata."""
    traces = []
    details = podman.inspect("image", image)
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    layers = image_layers(podman, image)
    found = [str(path) for layer in layers for path in layer.rglob("*")
             if path.name in CREDENTIAL_FILES and not path.is_dir()]
    found += [str(path) for layer in layers for pattern in ("**/.docker/config.json",
                                                            "**/.aws/credentials")
              for path in layer.glob(pattern)]
    if found:
        traces.append(f"credential files: {found[:5]}")
    searched = [str(layer / tree) for layer in layers for tree in OWN_TREES
                if (layer / tree).exists()]
    shaped = subprocess.run(["grep", "-rlE", "--binary-files=without-match", TOKEN_SHAPES,
                             *searched], capture_output=True, text=True).stdout.split()
    if shaped:
        traces.append(f"key- or token-shaped text in {shaped[:5]}")
    for line in [*(details["Config"].get("Env") or []), *history.splitlines()]:
        if re.search(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY)\w*=\S", line, re.I):
            traces.append(f"a secret-named setting in the image's metadata: {line[:120]}")
    return traces


def refuses_bad_config_in_container(podman, image: str, case: BadConfig,
                                    folder: Path) -> str | None:
    """Runs the image with the case (its folder, made here, mounted at /faults as a user mounts
    theirs); returns what was wrong with how the container's entrypoint met it, or None."""
    folder.mkdir(parents=True)
    os.chown(folder, 1000, 1000)  # the image's user, as a fresh volume's owner would be
    prepare_bad_config(case, folder, "/faults")
    env = bad_config_environment(case, "/faults", "/faults/config.yaml")
    options = [option for name, value in env.items() for option in ("--env", f"{name}={value}")]
    options += ["--volume", f"{folder}:/faults"]
    if case.setup == "read_only":
        options += ["--volume", f"{folder / 'read_only'}:/faults/read_only:ro"]
    before = snapshot(folder)
    result = podman("run", "--rm", "--pull=never", *options, image, timeout=120, check=False)
    # `run --rm` returns once the container is gone: nothing it started can still run.
    return judge_bad_config(case, result.returncode, result.stdout + result.stderr, before,
                            snapshot(folder), [])


def container_scenarios(folder: Path) -> Outcome:
    """Builds the image with the container tests' harness (as their image_build fixture does),
    runs the security checks and the bad-config corpus through it, and cleans up after itself."""
    from bench.startup import other_podman_processes
    from tests.container.conftest import IMAGE, cpu_build_options, import_debian_base
    from tests.container.podman import HostFootprint, IsolatedPodman, TrackedContainers

    # The cleanup takes away the nf_tables tables that podman added meanwhile: with another
    # podman at work (the container tests, bench.startup), each would take away the other's.
    wait_until(lambda: not other_podman_processes(), 1800, "the other podman sessions to end",
               interval=10)
    footprint = HostFootprint.now()
    podman = IsolatedPodman(folder / "podman")
    figures: dict = {}
    faults: list[str] = []
    try:
        import_debian_base(podman, folder)
        status, log = podman.stream("build", *cpu_build_options(), "--tag", IMAGE, REPO,
                                    timeout=1800)
        if status != 0:
            raise ScenarioError(f"podman build exited {status}: {log[-3000:]}")

        with TrackedContainers(podman, IMAGE) as containers:
            volumes_of = {"no volume": {},
                          "root-owned volume": {root_owned_volume(folder): "/cifar10_train"}}
            for name, volumes in volumes_of.items():
                container = running_appliance(podman, containers, volumes)
                more_figures, more_faults = running_container_problems(podman, container)
                figures.update({f"{figure} ({name})": value
                                for figure, value in more_figures.items()})
                faults += [f"{name}: {fault}" for fault in more_faults]
                container.stop(DOCKER_STOP_GRACE_SECS)
        told_apart, traces = ca_secret_traces(podman, IMAGE, ca_bundle)
        figures["ca_secret_certificates_looked_for"] = told_apart
        faults += traces
        faults += credential_traces(podman, IMAGE)
        figures["image_layers_searched"] = len(image_layers(podman, IMAGE))
        refused = 0
        for number, case in enumerate(BAD_CONFIGS):
            problem = refuses_bad_config_in_container(podman, IMAGE, case,
                                                      folder / f"case-{number:02d}")
            refused += problem is None
            if problem:
                faults.append(f"{case.name} (container): {problem}")
        figures["bad_configs_refused_in_container"] = f"{refused}/{len(BAD_CONFIGS)}"
    finally:
        podman.reset()
        if others := other_podman_processes():
            print(f"left nf_tables and podman's host folders as they are: another podman "
                  f"(pids {others}) may be using them", flush=True)
        else:
            footprint.restore()
    return Outcome("container", figures, faults)


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------

def scenarios(size: Size, seed: int) -> dict:
    """Name -> function of a work folder, in the order they run."""
    return {
        "crash_loop": lambda folder: crash_loop(folder, size.kills, seed),
        "graceful_stop": lambda folder: graceful_stop(folder, size.stops, size.stop_within_secs,
                                                      seed),
        "eval_race": lambda folder: eval_race(folder, size.race_secs),
        "bad_configs": bad_configs,
        "changed_model": changed_model,
        "bad_data": bad_data,
        "full_disk": full_disk,
        "neighbours": neighbours,
        "container": container_scenarios,
    }


def run_scenario(name: str, scenario, folder: Path) -> Outcome:
    started = time.monotonic()
    folder.mkdir(parents=True)
    try:
        outcome = scenario(folder)
    except ScenarioError as error:
        outcome = Outcome(name, {}, [f"could not run: {error}"])
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def print_table(outcomes: list[Outcome]) -> None:
    print(f"\n{'scenario':<14} {'figure':<44} value")
    for outcome in outcomes:
        for number, (figure, value) in enumerate(outcome.figures.items()):
            text = value if isinstance(value, str) else json.dumps(value)
            print(f"{outcome.name if number == 0 else '':<14} {figure:<44} {text}")
        verdict = "held" if not outcome.faults else f"{len(outcome.faults)} FAULT(S)"
        print(f"{'':<14} {'(' + verdict + f', {outcome.seconds:.0f} s)':<44}")
        for fault in outcome.faults:
            print(f"{'':<14}   FAULT: {fault}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("full", "quick"), default="full")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder to look at")
    arguments = parser.parse_args(argv)
    size = FULL if arguments.size == "full" else QUICK
    chosen = scenarios(size, arguments.seed)
    if arguments.only:
        chosen = {name: chosen[name] for name in arguments.only.split(",")}

    about = machine.describe()
    print(machine.headline(about))
    print(f"size {arguments.size}: {dataclasses.asdict(size)}; seed {arguments.seed}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="cifar10-faults-"))
    outcomes = []
    try:
        for name, scenario in chosen.items():
            print(f"{name} ...", flush=True)
            outcomes.append(run_scenario(name, scenario, work / name))
            print(f"{name}: {'held' if not outcomes[-1].faults else outcomes[-1].faults}",
                  flush=True)
    finally:
        if arguments.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(outcomes)
    print(json.dumps({"machine": about, "size": arguments.size, "seed": arguments.seed,
                      "scenarios": {o.name: {"figures": o.figures, "faults": o.faults,
                                             "seconds": o.seconds} for o in outcomes}}))
    return 1 if any(o.faults for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
