"""train_dir on a small tmpfs, most of it taken by someone else's file.

full_disk       while the stack trains, then once the file is deleted, then after a restart:
                what the trainer said, the listed checkpoint, what a failed save left, whether
                the trainer exited, how soon it went on and from where a restart resumed.
eval_full_disk  while eval has checkpoints to evaluate (the run trained, the disk then filled to
                all but a little), then once the file is deleted: what eval said and how often,
                whether it exited (supervisord would restart it, again and again), results.jsonl
                and TensorBoard's eval curves.

tests/faults checks that the trainer says the disk is full and waits, its listed checkpoint
restoring, goes on once the file is deleted and resumes from the newest checkpoint after a
restart; that eval says so once and waits, never exits, and once freed records every evaluation
(results.jsonl whole, nothing evaluated twice, TensorBoard's eval curves each step once).
"""
from __future__ import annotations

import contextlib
import dataclasses
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
from tests.harness.faults.outcome import ScenarioError
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


@dataclasses.dataclass
class FullDisk:
    train_dir: Path
    trainer_said: str                  # its disk-full line
    listed_when_full: int | None       # the newest checkpoint the state file listed then
    listed_restores: str | None        # why that one does not restore (None: it does)
    partial_saves: list[str]           # what the failed save left taking space
    exited_while_full: list[str]       # supervisord's lines, should the trainer have exited
    went_on_after_secs: float          # from the deletion to a newer checkpoint
    steps_lost: int                    # steps trained before the disk filled that it lost
    newest_before_restart: int | None
    newest_at_restart: int | None      # the restart's own stop saves one more
    restart_resumed_from: int | None
    eval_crashes_while_full: int

    def figures(self) -> dict:
        return {"trainer_said": self.trainer_said,
                "listed_checkpoint_when_full": self.listed_when_full,
                "went_on_after_secs": round(self.went_on_after_secs, 1),
                "steps_lost": self.steps_lost,
                "restart_resumed_from": self.restart_resumed_from,
                "eval_crashes_while_full": self.eval_crashes_while_full}


def full_disk(folder: Path) -> FullDisk:
    with small_disk(folder / "train", FULL_DISK_SIZE_MB) as train_dir:
        others_file = train_dir / "someone-elses-file"
        others_file.write_bytes(bytes(OTHERS_FILE_MB << 20))
        return _fill_and_free(folder, train_dir, others_file)


def _fill_and_free(folder: Path, train_dir: Path, others_file: Path) -> FullDisk:
    max_steps = 400
    config = small_config(train={"max_steps": max_steps},
                          runtime={"checkpoint_every_steps": 20, "keep_checkpoints": 2,
                                   "log_every_secs": 0.001})
    stack = NativeStack(folder, config)
    run_dir = stack.run_dir  # inside the tmpfs: train_dir's run folder
    log = StackLog(stack.log_file)
    stack.start()
    try:
        said = _says_the_disk_is_full(log, log_lines.DISK_FULL, "the trainer")
        trainer = log.current("train")
        full_at = trainer.last_step
        listed = newest_listed(run_dir)
        listed_restores = (restores(run_dir / f"model.ckpt-{listed}") if listed is not None
                           else None)
        partial = sorted(p.name for p in run_dir.glob("model.ckpt-*_temp*"))
        time.sleep(3)
        exited = _exited_while_full(log, "train", trainer)
        freed_at = _free(log, others_file, log_lines.DISK_HAS_ROOM, "the trainer")
        log.wait(lambda: (newest_listed(run_dir) or 0) > (listed or 0), 120,
                 "a checkpoint after the space was freed")
        went_on_after = time.monotonic() - freed_at
        steps_lost = max(0, (full_at or 0) - (newest_listed(run_dir) or 0))

        # And a restart resumes from the newest checkpoint.
        before = newest_listed(run_dir)
        stack.supervisorctl("restart", "appliance:train")
        restarted = log.wait(lambda: (l := log.current("train")) is not trainer
                             and l.resumed_step is not None and l, 180,
                             "the restarted trainer to resume")
        expected = newest_listed(run_dir)
        log.wait(lambda: log.matching(log_lines.REACHED_MAX_STEPS), 300,
                 f"max_steps {max_steps}")
    finally:
        stack.stop()
    return FullDisk(
        train_dir=train_dir, trainer_said=said, listed_when_full=listed,
        listed_restores=listed_restores, partial_saves=partial, exited_while_full=exited,
        went_on_after_secs=went_on_after, steps_lost=steps_lost, newest_before_restart=before,
        newest_at_restart=expected, restart_resumed_from=restarted.resumed_step,
        eval_crashes_while_full=len(log.unexpected_exits("eval")))


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


@dataclasses.dataclass
class EvalFullDisk:
    eval_said: str                   # its first disk-full line
    disk_full_lines_while_full: int  # in SAYS_IT_ONCE_WITHIN_SECS
    recorded_while_full: int         # lines of results.jsonl
    exited_while_full: list[str]     # supervisord's lines, should eval have exited
    recorded_all_after_secs: float   # from the deletion to the last checkpoint's evaluation
    results_lines: list[str]         # results.jsonl at the end
    eval_curve_problems: list[str]   # going_back() of TensorBoard's eval run, "run R: ..."
    eval_crashes: list[str]          # supervisord's lines of eval's unexpected exits
    eval_starts: int
    eval_tracebacks: list[str]

    @property
    def whole_results(self) -> list[dict]:
        return [json.loads(line) for line in self.results_lines if _is_json(line)]

    def figures(self) -> dict:
        return {"eval_said": self.eval_said,
                "disk_full_lines_while_full": self.disk_full_lines_while_full,
                "recorded_while_full": self.recorded_while_full,
                "recorded_all_after_secs": round(self.recorded_all_after_secs, 1),
                "results_lines_whole": f"{len(self.whole_results)}/{len(self.results_lines)}",
                "evaluated_steps": [result["step"] for result in self.whole_results],
                "eval_crashes": len(self.eval_crashes), "eval_starts": self.eval_starts}


def eval_full_disk(folder: Path) -> EvalFullDisk:
    with small_disk(folder / "train", EVAL_DISK_SIZE_MB) as train_dir:
        return _eval_waits_out_a_full_disk(folder, train_dir)


def _eval_waits_out_a_full_disk(folder: Path, train_dir: Path) -> EvalFullDisk:
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
    stack.start()
    try:
        said = _says_the_disk_is_full(log, log_lines.EVAL_DISK_FULL, "eval")
        evaluator = log.current("eval")
        # Time for a crash loop to show, or for the message to come again.
        time.sleep(SAYS_IT_ONCE_WITHIN_SECS)
        lines_while_full = len(log.matching(log_lines.EVAL_DISK_FULL))
        recorded_while_full = len(stack.eval_results())
        exited = _exited_while_full(log, "eval", evaluator)
        freed_at = _free(log, others_file, log_lines.EVAL_DISK_HAS_ROOM, "eval")
        wait_until(lambda: any(r["step"] == EVAL_MAX_STEPS for r in stack.eval_results()), 300,
                   "eval to record the evaluation of the last checkpoint", interval=1)
        recorded_all_after = time.monotonic() - freed_at
        run = stack.run_dir.name
        wait_until(lambda: _eval_curve(stack, run)[-1:] == [EVAL_MAX_STEPS], 60,
                   "TensorBoard to show the last evaluation", interval=1)
        eval_curves = curves(stack.api, f"{run}/eval")
    finally:
        stack.stop()
    log.update()
    return EvalFullDisk(
        eval_said=said, disk_full_lines_while_full=lines_while_full,
        recorded_while_full=recorded_while_full, exited_while_full=exited,
        recorded_all_after_secs=recorded_all_after,
        results_lines=(stack.run_dir / "eval" / "results.jsonl").read_text().splitlines(),
        eval_curve_problems=[f"run {run}/eval: {problem}" for problem in going_back(eval_curves)],
        eval_crashes=log.unexpected_exits("eval"), eval_starts=len(log.lives.get("eval", [])),
        eval_tracebacks=log.tracebacks("eval"))


def _says_the_disk_is_full(log: StackLog, pattern, who: str) -> str:
    """Waits for `who` to say the disk is full; returns what it said."""
    return log.wait(lambda: log.matching(pattern), 300,
                    f"{who} to say the disk is full")[0]["message"]


def _exited_while_full(log: StackLog, program: str, life) -> list[str]:
    """If `program`, whose life was `life` when the disk filled, has exited since: how
    (supervisord's lines of its unexpected exits, or its own life's end)."""
    log.update()
    if log.current(program) is life and not life.exit:
        return []
    return log.unexpected_exits(program) or [f"{program} exited: {life.exit}"]


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
