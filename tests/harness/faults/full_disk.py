"""train_dir on a small tmpfs, most of it taken by someone else's file.

full_disk       while the stack trains: the trainer must say the disk is full and wait; the listed
                checkpoint must restore; once the file is deleted, training goes on, and a restart
                resumes from the newest checkpoint.
eval_full_disk  while eval has checkpoints to evaluate (the run trained, the disk then filled to
                all but a little): eval must say the disk is full once and wait, never exit
                (supervisord would restart it, again and again), and once the file is deleted
                record every evaluation; results.jsonl whole (no half line), nothing evaluated
                twice, TensorBoard's eval curves each step once.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed, restores
from tests.harness.faults.outcome import Outcome, ScenarioError
from tests.harness.faults.stack_log import StackLog
from tests.harness.native_stack import NativeStack, small_config
from tests.harness.tensorboard_api import curves, going_back
from tests.harness.waiting import wait_until

# Room for the run once the other file is gone: train's event file (~7 MB), three checkpoints of
# 8.5 MB (two kept, one being written) and eval's files (events, projector, export, ~12 MB).
FULL_DISK_SIZE_MB = 64
OTHERS_FILE_MB = 40       # what someone else keeps on the same disk, deleted later


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int):
    """A tmpfs of size_mb mounted at `path` (made here) for the time of the block. Mounting needs
    root."""
    if os.geteuid() != 0:
        raise ScenarioError("a full disk is a tmpfs mounted here, which needs root")
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=True)


def full_disk(folder: Path) -> Outcome:
    with small_disk(folder / "train", FULL_DISK_SIZE_MB) as train_dir:
        others_file = train_dir / "someone-elses-file"
        others_file.write_bytes(bytes(OTHERS_FILE_MB << 20))
        return _fill_and_free(folder, train_dir, others_file)


def _fill_and_free(folder: Path, train_dir: Path, others_file: Path) -> Outcome:
    max_steps = 400
    config = small_config(train={"max_steps": max_steps},
                          runtime={"checkpoint_every_steps": 20, "keep_checkpoints": 2,
                                   "log_every_steps": 1})
    stack = NativeStack(folder, config)
    run_dir = stack.run_dir  # inside the tmpfs: train_dir's run folder
    log = StackLog(stack.log_file)
    faults: list[str] = []
    figures: dict = {}
    stack.start()
    try:
        said = _says_the_disk_is_full(log, log_lines.DISK_FULL, "the trainer")
        trainer = log.current("train")
        full_at = trainer.last_step
        figures["trainer_said"] = said
        if str(train_dir) not in said:
            faults.append(f"the disk-full message does not name train_dir: {said}")
        listed = newest_listed(run_dir)
        figures["listed_checkpoint_when_full"] = listed
        if listed is None:
            faults.append("the disk filled before the first checkpoint; make the tmpfs larger")
        elif (reason := restores(run_dir / f"model.ckpt-{listed}")) is not None:
            faults.append(f"the listed model.ckpt-{listed} does not restore: {reason}")
        partial = sorted(p.name for p in run_dir.glob("model.ckpt-*_temp*"))
        if partial:
            faults.append(f"the failed save left {partial} taking space")
        time.sleep(3)
        faults += _exited_while_full(log, "train", trainer)
        freed_at = _free(log, others_file, log_lines.DISK_HAS_ROOM, "the trainer")
        log.wait(lambda: (newest_listed(run_dir) or 0) > (listed or 0), 120,
                 "a checkpoint after the space was freed")
        figures["went_on_after_secs"] = round(time.monotonic() - freed_at, 1)
        figures["steps_lost"] = max(0, (full_at or 0) - (newest_listed(run_dir) or 0))

        # And a restart resumes from the newest checkpoint.
        before = newest_listed(run_dir)
        stack.supervisorctl("restart", "train")
        restarted = log.wait(lambda: (l := log.current("train")) is not trainer
                             and l.resumed_step is not None and l, 180,
                             "the restarted trainer to resume")
        expected = newest_listed(run_dir)  # the restart's own stop saves one more
        figures["restart_resumed_from"] = restarted.resumed_step
        if restarted.resumed_step != expected or expected < before:
            faults.append(f"the restart resumed from step {restarted.resumed_step}, not from the "
                          f"newest checkpoint, {expected}")
        log.wait(lambda: log.matching(log_lines.REACHED_MAX_STEPS), 300,
                 f"max_steps {max_steps}")
    finally:
        stack.stop()
    figures["eval_crashes_while_full"] = len(log.unexpected_exits("eval"))
    return Outcome("full_disk", figures, faults)


# -- eval under a full disk ---------------------------------------------------------------------

# The run's three checkpoints (8.5 MB each) and events take ~35 MB; eval's files for three
# evaluations (events, the projector's files, the export) ~15 MB.
EVAL_DISK_SIZE_MB = 96
# What is left free once someone else's file has filled the disk: room for eval to open its event
# file and write an evaluation's events, not for the Projector's files or the export after them,
# so that the disk fills in the middle of an evaluation.
EVAL_DISK_LEFT_FREE = 256 << 10
EVAL_MAX_STEPS = 75       # checkpoints at 25, 50 and 75: three evaluations waiting
SAYS_IT_ONCE_WITHIN_SECS = 10


def eval_full_disk(folder: Path) -> Outcome:
    with small_disk(folder / "train", EVAL_DISK_SIZE_MB) as train_dir:
        return _eval_waits_out_a_full_disk(folder, train_dir)


def _eval_waits_out_a_full_disk(folder: Path, train_dir: Path) -> Outcome:
    config = small_config(train={"max_steps": EVAL_MAX_STEPS},
                          runtime={"checkpoint_every_steps": 25, "keep_checkpoints": 3},
                          eval={"every_secs": 1})
    stack = NativeStack(folder, config)
    # The run trained first, by the trainer alone: its checkpoints are eval's work to come.
    trained = stack.run(sys.executable, "-m", "app", "train", timeout=600)
    if trained.returncode != ExitCode.DONE:
        raise ScenarioError(f"the run did not train: {trained.stdout[-1500:]}{trained.stderr[-1500:]}")
    others_file = train_dir / "someone-elses-file"
    others_file.write_bytes(bytes(max(0, shutil.disk_usage(train_dir).free - EVAL_DISK_LEFT_FREE)))
    log = StackLog(stack.log_file)
    faults: list[str] = []
    figures: dict = {}
    stack.start()
    try:
        said = _says_the_disk_is_full(log, log_lines.EVAL_DISK_FULL, "eval")
        figures["eval_said"] = said
        evaluator = log.current("eval")
        # Time for a crash loop to show, or for the message to come again.
        time.sleep(SAYS_IT_ONCE_WITHIN_SECS)
        figures["disk_full_lines_while_full"] = len(log.matching(log_lines.EVAL_DISK_FULL))
        figures["recorded_while_full"] = len(stack.eval_results())
        if figures["disk_full_lines_while_full"] != 1:
            faults.append(f"eval said the disk is full {figures['disk_full_lines_while_full']} "
                          f"times in {SAYS_IT_ONCE_WITHIN_SECS} s, not once")
        faults += _exited_while_full(log, "eval", evaluator)
        freed_at = _free(log, others_file, log_lines.EVAL_DISK_HAS_ROOM, "eval")
        wait_until(lambda: any(r["step"] == EVAL_MAX_STEPS for r in stack.eval_results()), 300,
                   "eval to record the evaluation of the last checkpoint", interval=1)
        figures["recorded_all_after_secs"] = round(time.monotonic() - freed_at, 1)
        run = stack.run_dir.name
        wait_until(lambda: _eval_curve(stack, run)[-1:] == [EVAL_MAX_STEPS], 60,
                   "TensorBoard to show the last evaluation", interval=1)
        eval_curves = curves(stack.api, f"{run}/eval")
    finally:
        stack.stop()
    log.update()

    lines = (stack.run_dir / "eval" / "results.jsonl").read_text().splitlines()
    whole = [line for line in lines if _is_json(line)]
    steps = [json.loads(line)["step"] for line in whole]
    figures["results_lines_whole"] = f"{len(whole)}/{len(lines)}"
    figures["evaluated_steps"] = steps
    if len(whole) != len(lines):
        faults.append(f"results.jsonl has {len(lines) - len(whole)} line(s) cut short")
    if steps != [25, 50, EVAL_MAX_STEPS]:
        faults.append(f"results.jsonl holds steps {steps}, not each checkpoint once, in order")
    faults += [f"TensorBoard, run {run}/eval: {problem}" for problem in going_back(eval_curves)]
    figures["eval_crashes"] = len(log.unexpected_exits("eval"))
    figures["eval_starts"] = len(log.lives.get("eval", []))
    faults += [f"eval crashed: {line}" for line in log.unexpected_exits("eval")]
    if figures["eval_starts"] != 1:
        faults.append(f"eval was started {figures['eval_starts']} times, not once")
    faults += [f"eval printed a traceback: {match.string}"
               for match in log.matching(log_lines.EVAL_TRACEBACK)]
    return Outcome("eval_full_disk", figures, faults)


def _says_the_disk_is_full(log: StackLog, pattern, who: str) -> str:
    """Waits for `who` to say the disk is full; returns what it said."""
    return log.wait(lambda: log.matching(pattern), 300,
                    f"{who} to say the disk is full")[0]["message"]


def _exited_while_full(log: StackLog, program: str, life) -> list[str]:
    """A fault if `program`, whose life was `life` when the disk filled, has exited since."""
    log.update()
    if log.current(program) is life and not life.exit:
        return []
    return [f"{program} exited while the disk was full: "
            + "; ".join(log.unexpected_exits(program))]


def _free(log: StackLog, others_file: Path, has_room, who: str) -> float:
    """Deletes the other file and waits for `who` to say there is room again; returns when the
    file was deleted."""
    others_file.unlink()
    freed_at = time.monotonic()
    log.wait(lambda: log.matching(has_room), 120, f"{who} to notice the space")
    return freed_at


def _eval_curve(stack: NativeStack, run: str) -> list[int]:
    try:
        return stack.api.steps("scalars", f"{run}/eval", "precision @ 1")
    except AssertionError:
        return []


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True
