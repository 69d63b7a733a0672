"""train_dir on a small tmpfs, most of it taken by someone else's file, while the stack trains. The
trainer must say the disk is full and wait; the listed checkpoint must restore; once the file is
deleted, training goes on, and a restart resumes from the newest checkpoint."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed, restores
from tests.harness.faults.outcome import Outcome, ScenarioError
from tests.harness.faults.stack_log import StackLog
from tests.harness.native_stack import NativeStack, small_config

# Room for the run once the other file is gone: train's event file (~7 MB), three checkpoints of
# 8.5 MB (two kept, one being written) and eval's files (events, projector, export, ~12 MB).
FULL_DISK_SIZE_MB = 64
OTHERS_FILE_MB = 40       # what someone else keeps on the same disk, deleted later


def full_disk(folder: Path) -> Outcome:
    """Mounts the tmpfs here, so it needs root."""
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
    config = small_config(train={"max_steps": max_steps, "checkpoint_every_steps": 20,
                                 "keep_checkpoints": 2, "log_every_steps": 1})
    stack = NativeStack(folder, config)
    run_dir = stack.run_dir  # inside the tmpfs: train_dir's run folder
    log = StackLog(stack.log_file)
    faults: list[str] = []
    figures: dict = {}
    stack.start()
    try:
        said = log.wait(lambda: log.matching(log_lines.DISK_FULL), 300,
                        "the trainer to say the disk is full")[0]["message"]
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
        log.update()
        if log.current("train") is not trainer:
            faults.append("the trainer exited while the disk was full: "
                          + "; ".join(log.unexpected_exits("train")))

        others_file.unlink()
        freed_at = time.monotonic()
        log.wait(lambda: log.matching(log_lines.DISK_HAS_ROOM), 60,
                 "the trainer to notice the space")
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
