"""Checkpoints on the volume: how they are named, which there are, and how they are saved and
restored so that none is ever lost or left half-written. A checkpoint is the files
model.ckpt-<global step>.index and .data-*, beside the `checkpoint` state file that lists every
kept one, the newest last (TensorFlow's names, drawn with the rest in app/volume/layout.py).

The trainer saves through tf.train.CheckpointManager, which writes a checkpoint's files first and
the state file last, and rotates the oldest away; eval and the trainer find checkpoints through the
state file alone, so a save cut short is never read. The paths the state file records are taken
for their names only: the volume may have been mounted elsewhere when they were written. Finding
them needs no TensorFlow (`python -m app report` answers in a moment); saving and restoring do.

A disk that fills up while they are saved is waited out (app/volume/disk_space.py).
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from app.exit_codes import AppError
from app.volume import layout

log = logging.getLogger(__name__)


class CheckpointsDoNotFit(AppError):
    """The folder holds checkpoints but none restores into this model: another recipe or config
    made them. Starting from step 0 would save over them and rotate that run away."""


# -- names ------------------------------------------------------------------------------------

def path_of(folder: Path, step: int) -> Path:
    """The checkpoint's prefix: its files are this plus `.index` and `.data-*`."""
    return Path(folder) / f"{layout.CHECKPOINT_NAME}-{step}"


def step_of(path) -> int:
    return int(str(path).rsplit("-", 1)[1])


def listed(folder: Path) -> list[Path]:
    """The checkpoints the state file lists, oldest first."""
    try:
        state = (Path(folder) / layout.CHECKPOINT_STATE_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    # The state file is a text protocol buffer (CheckpointState) of quoted paths.
    names = {Path(path).name for path in re.findall(
        r'^all_model_checkpoint_paths:\s*"(.*)"\s*$', state, re.MULTILINE)}
    return sorted((Path(folder) / name for name in names if _is_checkpoint_name(name)),
                  key=step_of)


def _is_checkpoint_name(name: str) -> bool:
    return re.fullmatch(rf"{re.escape(layout.CHECKPOINT_NAME)}-\d+", name) is not None


def newest(folder: Path) -> Path | None:
    checkpoints = listed(folder)
    return checkpoints[-1] if checkpoints else None


def newest_name(folder: Path) -> str:
    """For messages: `model.ckpt-1200`, or `none yet`."""
    found = newest(folder)
    return found.name if found else "none yet"


# -- restoring and saving ---------------------------------------------------------------------

def restore_newest_that_fits(checkpoint, folder: Path,
                             what_it_holds: str) -> Path | None:
    """Restores the newest listed checkpoint that restores into `checkpoint`, newest first (a save
    cut short must not keep the run from resuming from the one before); None when there is none.
    Raises CheckpointsDoNotFit when there are some but none fits; `what_it_holds` then names what
    they were expected to hold (e.g. "the tutorial recipe's model")."""
    import tensorflow as tf

    checkpoints = listed(folder)
    newest_reason = None
    for path in reversed(checkpoints):
        try:
            # What the checkpoint holds beyond `checkpoint` (float16's loss scale, restored on
            # its own) is no mismatch.
            checkpoint.restore(str(path)).assert_existing_objects_matched().expect_partial()
        except (tf.errors.OpError, ValueError, AssertionError) as error:
            log.info(f"cannot restore {path} ({type(error).__name__}: {error}); trying an older "
                     f"checkpoint")
            if newest_reason is None:
                newest_reason = str(error).strip().splitlines()[0][:200].rstrip(".")
            continue
        return path
    if checkpoints:
        raise CheckpointsDoNotFit(
            f"none of the {len(checkpoints)} checkpoints in {folder} restores into "
            f"{what_it_holds}; the newest: {newest_reason}")
    return None


def remove_unfinished_saves(folder: Path) -> list[str]:
    """Removes what saves cut short left: TensorFlow's `_temp` folders, and the files of any
    checkpoint newer than the newest listed one (a kill between a save's files and the state
    file). Never a listed checkpoint, nor an older unlisted one (a user may have kept it).
    Returns the names of what it removed."""
    newest_listed = newest(folder)
    newest_step = step_of(newest_listed) if newest_listed else None
    removed = []
    for path in sorted(Path(folder).glob(f"{layout.CHECKPOINT_NAME}-*")):
        match = re.fullmatch(
            rf"{re.escape(layout.CHECKPOINT_NAME)}-(\d+)(_temp.*|\.index|\.data-.*)", path.name)
        if not match:
            continue
        unfinished = match.group(2).startswith("_temp")
        unlisted_and_newer = newest_step is not None and int(match.group(1)) > newest_step
        if unfinished or unlisted_and_newer:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path.name)
    return removed


class Saver:
    """Saves numbered checkpoints into a folder and keeps the newest `keep`; a save that fails
    leaves no part of itself behind."""

    def __init__(self, checkpoint, folder: Path, keep: int):
        import tensorflow as tf

        self.folder = Path(folder)
        self.manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=keep,
                                                  checkpoint_name=layout.CHECKPOINT_NAME)

    def has_saved(self, step: int) -> bool:
        return self.manager.latest_checkpoint == str(path_of(self.folder, step))

    def save(self, step: int) -> None:
        """Writes the checkpoint of `step`, unless it is the newest already. Raises what the
        write raised (a tf.errors.OpError or OSError) after removing what it left."""
        import tensorflow as tf

        if self.has_saved(step):
            return
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError):
            # Half a checkpoint is never listed, never rotated away: it would only hold on to
            # the space that a full disk lacks.
            for partial in self.folder.glob(f"{layout.CHECKPOINT_NAME}-{step}[._]*"):
                if partial.is_dir():
                    shutil.rmtree(partial, ignore_errors=True)
                else:
                    partial.unlink(missing_ok=True)
            raise
