"""The checkpoints in a train_dir: what the `checkpoint` state file lists, and whether each
checkpoint on disk reads back whole."""
from __future__ import annotations

from pathlib import Path

from app.volume import checkpoints


def listed_checkpoints(train_dir: Path) -> list[int]:
    """The steps of every checkpoint the state file lists, oldest first (read as app reads it)."""
    return [checkpoints.step_of(path) for path in checkpoints.listed(train_dir)]


def newest_listed(train_dir: Path) -> int | None:
    """The step of the newest checkpoint the state file lists (None before the first)."""
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
