"""kill -9 the trainer at random points between its checkpoints (and eval now and then), let it
resume and train past, then look at what TensorBoard shows: no curve of the training run or of
its eval run may repeat a step or run backward, for any kind of data (scalars, histograms,
distributions, images, text, PR curves) nor in the HParams table; no save cut short is left
after a start; nothing of train or eval is left in the temp folder.

Each resume trains the steps since its checkpoint a second time, and the earlier life's events of
those steps are still in its event file: TensorBoard shows them once only because each start marks
SessionLog START at its step (app/tensorboard/summaries.py), which TensorBoard's loader (--load_fast false, as
the appliance runs it) takes as the order to drop what was written from that step on.

What a kill between a checkpoint's files and the state file leaves (a checkpoint newer than the
newest listed one) is planted once, right after a kill, with an older unlisted checkpoint of the
kind a user may keep: the next start must remove the first, with a log line, and keep the other.
`killed_and_resumed()` does all of it and returns what was seen; tests/stack checks it item by item,
bench.faults prints its figures().
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.checkpoints import audit_checkpoints, newest_listed
from tests.harness.faults.stack_log import Life, StackLog, program_pid, resumed_after
from tests.harness.native_stack import NativeStack, alive, small_config
from tests.harness.tensorboard_api import curves, going_back, hparams_rows
from tests.harness.waiting import wait_until

CHECKPOINT_EVERY = 25
SUMMARY_EVERY = 10    # often, so that every kill leaves summaries of steps trained again
KILL_EVAL_EVERY = 3   # every third kill of the trainer, eval is killed too
# What TensorBoard itself keeps in the temp folder (the info file `tensorboard --list` reads);
# the question is what train and eval leave.
TENSORBOARD_OWN = ".tensorboard-info"


@dataclasses.dataclass
class KilledAndResumed:
    stack: NativeStack
    max_steps: int
    kills: list[dict]                 # each: step killed at, checkpoint listed then
    trained_twice: list[tuple[int, int]]  # per kill: (resumed from, killed at) of the steps
                                      # between, which the next life trained again
    eval_kills: int
    curves: dict[str, dict]           # TensorBoard's run -> {(kind, tag): steps shown}
    hparams: dict[str, dict]          # session -> its row (tensorboard_api.hparams_rows)
    removed_at_start: list[str]       # the trainer's "removed model.ckpt-N...: a save cut short"
    planted_newer: list[str]          # the unlisted newer checkpoint's files, planted
    planted_older: list[str]          # the older unlisted checkpoint's files, a user's
    left_after_resume: list[str]      # saves cut short still there once a trainer resumed
    temp_left: list[str]              # what train and eval left in the temp folder
    eval_crashes: list[str]           # eval's exits that were not our kills
    checkpoint_problems: list[str]    # audit_checkpoints() at the end, the user's older
                                      # unlisted checkpoint left out
    log: StackLog

    def figures(self) -> dict:
        going_wrong = {run: going_back(shown) for run, shown in self.curves.items()}
        removed_wrongly = sorted(set(self.planted_older) & set(self.removed_at_start))
        return {
            "kills": len(self.kills),
            "eval_kills": self.eval_kills,
            "steps_trained_twice": sum(killed - resumed for resumed, killed in self.trained_twice),
            "summary_steps_written_twice": len(summary_steps_written_twice(self)),
            "curves_checked": sum(len(shown) for shown in self.curves.values()),
            "kinds_checked": sorted({kind for shown in self.curves.values()
                                     for kind, _ in shown}) + ["hparams"],
            "curves_with_steps_repeated_or_backward": sum(map(len, going_wrong.values())),
            "hparams_rows": {session: row["groups"] for session, row in self.hparams.items()},
            "unfinished_saves_removed_at_start": len(self.removed_at_start),
            "partial_checkpoints_left_after_resume": len(self.left_after_resume),
            "users_older_checkpoint_kept": not removed_wrongly,
            "files_left_in_temp_folder": len(self.temp_left),
            "eval_crashes": len(self.eval_crashes),
        }


def killed_and_resumed(folder: Path, kills: int, seed: int = 0) -> KilledAndResumed:
    """Runs the stack through `kills` kill -9s of its trainer (and every KILL_EVAL_EVERY-th of
    eval), lets it train to max_steps and be evaluated, reads what TensorBoard shows, stops it,
    and returns all that was seen."""
    rng = random.Random(seed)
    # Each life trains at most 2 x CHECKPOINT_EVERY steps before its kill; the last one then
    # trains past the last kill to max_steps undisturbed.
    max_steps = kills * 2 * CHECKPOINT_EVERY + 2 * CHECKPOINT_EVERY
    config = small_config(train={"max_steps": max_steps},
                          runtime={"checkpoint_every_steps": CHECKPOINT_EVERY,
                                   "checkpoint_every_secs": None, "log_every_secs": 0.001,
                                   "summary_every_steps": SUMMARY_EVERY},
                          eval={"every_secs": 1})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    killed: list[dict] = []
    eval_kills = 0
    planted_newer: list[str] = []
    planted_older: list[str] = []
    left_after_resume: list[str] = []
    stack.start()
    try:
        for number in range(kills):
            life = wait_until(lambda: _new_life(log, killed), 120, "the trainer to start",
                              interval=0.05)
            pid = program_pid(life)
            log.wait(lambda: life.resumed_step is not None, 180, "the trainer to resume")
            left_after_resume += _saves_cut_short(stack.run_dir)
            target = _between_checkpoints(rng, life.resumed_step)
            log.wait(lambda: (life.last_step or 0) >= target, 180, f"step {target}",
                     interval=0.005)
            os.kill(pid, signal.SIGKILL)
            log.wait(lambda: not alive(pid) and life.exit, 30, "supervisord to notice the kill")
            killed.append({"life": life, "step": life.last_step,
                           "checkpoint": newest_listed(stack.run_dir)})
            if not planted_newer and killed[-1]["checkpoint"] is not None:
                # supervisord has started the next trainer: seconds before it looks.
                planted_newer, planted_older = _plant_unlisted_checkpoints(stack.run_dir)
            if number % KILL_EVAL_EVERY == KILL_EVAL_EVERY - 1:
                eval_kills += _kill_eval(log, rng)
        log.wait(lambda: log.matching(log_lines.REACHED_MAX_STEPS), 600,
                 f"the trainer to reach max_steps {max_steps}")
        left_after_resume += _saves_cut_short(stack.run_dir)
        wait_until(lambda: any(r["step"] == max_steps for r in stack.eval_results()), 300,
                   f"eval of the checkpoint at step {max_steps}", interval=1)
        run = stack.run_dir.name
        runs = (run, f"{run}/eval")
        wait_until(lambda: _shows_the_end(stack, run, max_steps), 120,
                   "TensorBoard to show the last steps of both runs", interval=1)
        shown = {name: curves(stack.api, name) for name in runs}
        rows = hparams_rows(stack.api)
    finally:
        stack.stop()
    log.update()
    trained_twice = [(resumed_after(log.lives["train"], kill["life"]), kill["step"])
                     for kill in killed]
    return KilledAndResumed(
        stack=stack, max_steps=max_steps, kills=killed, trained_twice=trained_twice,
        eval_kills=eval_kills, curves=shown,
        hparams=rows,
        removed_at_start=[match["name"] for match in log.matching(
            log_lines.REMOVED_UNFINISHED_SAVE)],
        planted_newer=planted_newer, planted_older=planted_older,
        left_after_resume=left_after_resume,
        temp_left=sorted(str(path.relative_to(stack.temp_dir))
                         for path in stack.temp_dir.rglob("*")
                         if TENSORBOARD_OWN not in path.relative_to(stack.temp_dir).parts),
        eval_crashes=_crashes(log.unexpected_exits("eval"), eval_kills),
        checkpoint_problems=[problem for problem in audit_checkpoints(stack.run_dir)[2]
                             if not any(name.split(".index")[0] in problem
                                        for name in planted_older)],
        log=log)


def summary_steps_written_twice(seen: KilledAndResumed) -> list[int]:
    """The summary steps that a killed life wrote and the next wrote again: what TensorBoard has
    to drop for its curves to stay true (none, and the check would prove nothing)."""
    return [step for resumed, killed in seen.trained_twice
            for step in range(resumed, killed) if step % SUMMARY_EVERY == 0]


def hparams_problems(seen: KilledAndResumed) -> list[str]:
    """The HParams table after the kills: one row for the run, each metric at the newest step
    of its curve (a value the killed life wrote, had it stayed, would sit behind it)."""
    run = seen.stack.run_dir.name
    row = seen.hparams.get(run)
    if row is None:
        return [f"HParams has no row for run {run}: {sorted(seen.hparams)}"]
    problems = [] if row["groups"] == 1 else [f"HParams shows run {run} {row['groups']} times"]
    newest = {"precision @ 1": seen.curves[f"{run}/eval"].get(("scalars", "precision @ 1")),
              "cross_entropy": seen.curves[f"{run}/eval"].get(("scalars", "cross_entropy")),
              "total_loss": seen.curves[run].get(("scalars", "total_loss"))}
    for tag, steps in newest.items():
        shown = row["metric_steps"].get(tag)
        if not steps or shown is None or int(shown) != steps[-1]:
            problems.append(f"HParams shows {tag} of run {run} at step {shown}, its curve ends "
                            f"at {steps[-1] if steps else None}")
    return problems


def _crashes(unexpected_exits: list[str], kills: int) -> list[str]:
    """The unexpected exits that were not our kill -9s."""
    crashes = [line for line in unexpected_exits if "SIGKILL" not in line]
    killed = len(unexpected_exits) - len(crashes)
    if killed > kills:
        crashes.append(f"{killed} exits by SIGKILL, {kills} of them ours")
    return crashes


def _new_life(log: StackLog, killed: list[dict]) -> Life | None:
    life = log.current("train")
    if life is None or life.exit or any(kill["life"] is life for kill in killed):
        return None
    return life


def _between_checkpoints(rng: random.Random, resumed_step: int) -> int:
    """A step 1 to 2 x CHECKPOINT_EVERY steps on, never one that saves a checkpoint."""
    while True:
        target = resumed_step + rng.randint(1, 2 * CHECKPOINT_EVERY - 1)
        if target % CHECKPOINT_EVERY:
            return target


def _saves_cut_short(run_dir: Path) -> list[str]:
    """What a save cut short leaves: files of a checkpoint newer than the newest listed one, and
    TensorFlow's _temp folders."""
    newest = newest_listed(run_dir) or 0
    return sorted(path.name for path in run_dir.glob("model.ckpt-*")
                  if "_temp" in path.name
                  or int(path.name.split("-", 1)[1].split(".", 1)[0]) > newest)


def _plant_unlisted_checkpoints(run_dir: Path) -> tuple[list[str], list[str]]:
    """Copies of the newest listed checkpoint under a newer step (what a kill between its files
    and the state file leaves) and under step 1 (older, unlisted: a file a user kept)."""
    newest = newest_listed(run_dir)
    planted = {newest + 3: [], 1: []}
    for step, names in planted.items():
        for path in sorted(run_dir.glob(f"model.ckpt-{newest}.*")):
            copy = run_dir / path.name.replace(f"model.ckpt-{newest}.", f"model.ckpt-{step}.")
            shutil.copyfile(path, copy)
            names.append(copy.name)
    return planted[newest + 3], planted[1]


def _kill_eval(log: StackLog, rng: random.Random) -> int:
    """kill -9 eval at a random moment of the next 3 s (evaluating, or waiting for a
    checkpoint); 1 if killed."""
    victim = log.current("eval")
    if victim is None or victim.exit:
        return 0
    time.sleep(rng.uniform(0.0, 3.0))
    os.kill(program_pid(victim), signal.SIGKILL)
    log.wait(lambda: victim.exit, 30, "supervisord to notice eval's kill")
    return 1


def _shows_the_end(stack: NativeStack, run: str, max_steps: int) -> bool:
    """TensorBoard has read both runs to their last events: the training run's loss curve at
    its last summary step, the eval run's precision at max_steps."""
    try:
        train = stack.api.steps("scalars", run, "total_loss")
        evaluated = stack.api.steps("scalars", f"{run}/eval", "precision @ 1")
    except AssertionError:
        return False
    return bool(train and evaluated) and train[-1] == max_steps - 1 and evaluated[-1] == max_steps
