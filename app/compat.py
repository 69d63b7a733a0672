"""The old forms the appliance still reads: configuration keys under the names they had, and what
a volume written before today's layout holds. Each piece says what it migrates, since when the new
form is written (the day it replaced the old one), and when it can go. An old key is read with one
warning line that says how to write it now; a volume's old files are moved, or read, as they are.

It sits at the package's top, not in app/config/ or app/volume/, because both call it, and what a
release may drop is then one file to read. Its only import of ours at the top is the volume's names
(app/volume/layout.py): the configuration imports this module, so the configuration's own types
are imported where a layer of settings is read, and the volume's modules can use this one without
loading the configuration. When a piece goes, so do its calls, each named in its note.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path

from app.volume import layout

log = logging.getLogger(__name__)


# -- configuration keys under their old names ---------------------------------------------------
# Read as the new key with one warning line that says how to write it now, in a file, a
# CIFAR10_* variable, --set and a sweep's `set:` alike (as_written_now, called by
# app/config/schema.py and app/config/sweep.py; section_named_now by app/config/sources.py).
# All can go in the release after 0.2: the warnings say "in this release only".

# Old name -> new name. A section name alone renames all of its keys.
RENAMED_KEYS = {
    # Since 2026-12-01 (0.2): each name says what it chooses, the recipe and not only the model,
    # and each recipe's own keys are in a section of its own.
    "train.model": "train.recipe",
    "train.initial_learning_rate": "tutorial.initial_learning_rate",
    "train.learning_rate_decay_factor": "tutorial.learning_rate_decay_factor",
    "train.epochs_per_decay": "tutorial.epochs_per_decay",
    "train.weight_decay": "tutorial.weight_decay",
    "resnet": "fast",
    # Since 2026-12-03: how the trainer runs on this machine, apart from what it learns.
    **{f"train.{key}": f"runtime.{key}" for key in (
        "device", "strategy", "threads", "cpu_devices", "xla", "steps_per_call",
        "checkpoint_every_steps", "checkpoint_every_secs", "keep_checkpoints",
        "summary_every_steps", "log_every_steps")},
    # Since 2026-12-03: what eval writes beside its metrics, each in a section of its own.
    "eval.projector_examples": "projector.examples",
    "eval.projector_every_evals": "projector.every_evals",
    "eval.export_best": "export.best",
    "eval.keep_exports": "export.keep",
    # Since 2026-12-03: one word for a cadence, every_steps or every_secs.
    "eval.interval_secs": "eval.every_secs",
    "tensorboard.reload_interval_secs": "tensorboard.reload_every_secs",
}
# Since 2026-12-01 (0.2): the values an old key took that the new one names otherwise.
RENAMED_VALUES = {"train.model": {"cnn": "tutorial", "resnet": "fast"}}
# Since 2026-12-03: 0 means off or none wherever a key takes it, and "the appliance decides" is
# `auto`. These keys wrote it 0 before; an old 0 there is still read as auto.
ZERO_MEANT_AUTO = frozenset({"runtime.threads", "runtime.steps_per_call", "eval.threads"})
# Since 2026-12-04: a trainer's cadence is a number > 0, and a trigger that is off is null. These
# keys wrote off as 0 before; an old 0 there is still read as null.
ZERO_MEANT_OFF = frozenset({"runtime.checkpoint_every_steps", "runtime.checkpoint_every_secs"})
# Since 2026-12-04: keys read as before whose meaning or default changed, with what the warning
# says about it, given where a user sets one (its default says nothing). Progress lines are timed
# by runtime.log_every_secs now; counted in steps they flooded the log at a GPU's pace.
CHANGED_MEANING = {
    "runtime.log_every_steps": (
        "progress lines are printed every runtime.log_every_secs now, not every 10 steps: set "
        "that instead; log_every_steps N still prints a line after each call that crosses a "
        "multiple of N (it no longer ends a call), in this release only"),
}


def section_named_now(section: str) -> str:
    """The section's name now: `resnet:` is `fast:`."""
    return RENAMED_KEYS.get(section, section)


def as_written_now(layer: dict) -> dict:
    """The layer of settings ({section: {key: Setting}}) with each renamed key under its new name
    and value, each old 0 that meant auto as auto and each that meant off as null, after one
    warning line for each (which also says what changed in a key's meaning). A key set under both
    its names in one layer is a ConfigError."""
    # Here, not at the top: see the module's docstring.
    from app.config import sources

    moved: dict[str, dict] = {}
    for section, settings in layer.items():
        for key, setting in settings.items():
            old, new = f"{section}.{key}", _key_named_now(section, key)
            setting, warning = _setting_now(old, new, setting)
            if warning:
                log.warning(f"{setting.origin}: {warning}")
            new_section, new_key = new.split(".", 1)
            if new_key in moved.get(new_section, {}):
                raise sources.ConfigError(
                    f"{setting.origin}: '{new}' is set twice, once under an old name (also at "
                    f"{moved[new_section][new_key].origin}); keep one")
            moved.setdefault(new_section, {})[new_key] = setting
    return moved


def _setting_now(old: str, new: str, setting):
    """The setting of `old` as `new` takes it now, and the one warning line it is worth (None
    when it is written as it is now)."""
    from app.config import sources  # here, not at the top: see the module's docstring

    if _is_zero(setting.value) and new in ZERO_MEANT_AUTO | ZERO_MEANT_OFF:
        value, zero_text = (sources.AUTO, "auto") if new in ZERO_MEANT_AUTO else (None, "null")
    else:
        value, zero_text = _value_named_now(old, setting.value), None
    meaning = CHANGED_MEANING.get(new) if value is not None else None
    if new == old and not zero_text and not meaning:
        return setting, None
    setting = sources.Setting(value, setting.origin, setting.text)
    how = sources.how_to_write(new, value, setting.origin)
    parts = []
    if new != old or zero_text:
        parts.append(_what_changed(old, new, zero_text, how))
    if meaning:
        parts.append(f"'{new}' still works with a new meaning: {meaning}")
    return setting, "; ".join(parts)


def _key_named_now(section: str, key: str) -> str:
    dotted = f"{section}.{key}"
    if dotted in RENAMED_KEYS:
        return RENAMED_KEYS[dotted]
    return f"{RENAMED_KEYS[section]}.{key}" if section in RENAMED_KEYS else dotted


def _is_zero(value) -> bool:
    return value == 0 and not isinstance(value, bool)  # `false` is no 0


def _value_named_now(old_key: str, value):
    if not isinstance(value, str):
        return value
    return RENAMED_VALUES.get(old_key, {}).get(value, value)


def _what_changed(old: str, new: str, zero_now: str | None, how: str) -> str:
    """The warning's words; `zero_now` is how an old 0 of the key is written now, if it was one."""
    if new == old:  # only the 0
        return (f"'{new}: 0' is now written '{new}: {zero_now}' (write {how}); 0 still means "
                f"{'off' if zero_now == 'null' else zero_now} in this release only")
    also = f", and its 0 is written {zero_now}" if zero_now else ""
    return (f"'{old}' is now called '{new}'{also} (write {how}); the old name still works in "
            f"this release only")


# -- a run kept at the volume's root ------------------------------------------------------------
# Since 2026-12-01 (0.2) each run is a folder of the volume, named by paths.run; before, the
# volume held its one run at its root. The first program to start on such a volume moves that run
# into the folder of paths.run (adopt_old_layout, called by app/train/trainer.py,
# app/eval/watcher.py and app/tensorboard/server.py before they read a file). It is a one-time
# move, so this can go once no volume from before 2026-12-01 is waiting to be started on: at the
# earliest in the release after 0.2. app/volume/runs.py's RESERVED_NAMES keeps runs off the names
# of the folders such a run kept at the root, so that the move never puts a folder into itself.

# What a run at the volume's root left there, all of it moved into the run's folder.
ROOT_RUN_FILES = (layout.CHECKPOINT_STATE_FILE, f"{layout.CHECKPOINT_NAME}-*", layout.EVENT_FILES,
                  layout.PROJECTOR_CONFIG_FILE, layout.EVAL_FOLDER, layout.EXPORT_FOLDER)


def adopt_old_layout(train_dir, run: str) -> None:
    """Moves a run kept at the volume's root into the folder of `run`, unless that folder holds a
    run already. Safe to call from every program at once."""
    root = Path(train_dir)
    if not _holds_a_root_run(root):
        return
    with _layout_locked(root):
        if not _holds_a_root_run(root):
            return  # another program moved it meanwhile
        target = root / run
        if (target / layout.CHECKPOINT_STATE_FILE).exists():
            log.warning(f"{root} holds a run at its root (the old layout) and {target} a run "
                        f"of its own: the root's run stays where it is, outside TensorBoard's "
                        f"runs; move its files into a folder of its own to see it")
            return
        moved = _move_root_run(root, target)
        log.info(f"moved the run at the root of {root} into {target} (runs are folders of the "
                 f"volume now; paths.run names them): {moved} files and folders, nothing "
                 f"deleted")


def _holds_a_root_run(root: Path) -> bool:
    return (root / layout.CHECKPOINT_STATE_FILE).is_file()


def _move_root_run(root: Path, target: Path) -> int:
    target.mkdir(exist_ok=True)
    moved = 0
    for pattern in ROOT_RUN_FILES:
        for path in sorted(root.glob(pattern)):
            os.replace(path, target / path.name)
            moved += 1
    return moved


@contextlib.contextmanager
def _layout_locked(root: Path):
    with open(root / layout.LAYOUT_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# -- the export from before versions: <run>/export/best/ -----------------------------------------
# Since 2026-12-01 (0.2) eval exports numbered versions, <run>/export/<step>/, for TensorFlow
# Serving, each with its evaluation in assets/ and a serving_default that takes image files.
# Before, it kept one <run>/export/best/, with evaluation.json beside saved_model.pb and a
# serving_default that took pixels, and stepped the export it replaced aside as .previous while it
# wrote the next. Such an export is still the run's best (app/volume/exports.py's newest,
# evaluation_of and recover; app/tools/predict.py) until the run's first version; best/ itself is
# never deleted. Can go in the release after 0.2: `predict` would then classify with the newest
# checkpoint of a run whose only export is best/, and its next evaluation, if any, export a version.

OLD_BEST_EXPORT = "best"
OLD_EXPORT_STEPPED_ASIDE = ".previous"


def old_best_export(export_folder: Path) -> Path | None:
    """<run>/export/best/ when it holds a SavedModel."""
    best = Path(export_folder) / OLD_BEST_EXPORT
    return best if (best / layout.SAVED_MODEL_FILE).is_file() else None


def old_evaluation_file(export: Path) -> Path:
    """Where an export from before versions kept the evaluation that made it the best."""
    return Path(export) / layout.EXPORT_EVALUATION_FILE


def put_back_old_export_stepped_aside(export_folder: Path) -> None:
    """Puts back the export from before versions that a kill left stepped aside, unless a newer
    one took its place; then lets go of what was stepped aside."""
    previous = Path(export_folder) / OLD_EXPORT_STEPPED_ASIDE
    best = Path(export_folder) / OLD_BEST_EXPORT
    if previous.is_dir() and not best.exists():
        os.replace(previous, best)
    shutil.rmtree(previous, ignore_errors=True)


def pixels_signature(signatures):
    """The signature of a loaded export that takes uint8 pixels: classify_pixels, or the
    serving_default of an export from before versions."""
    return signatures.get("classify_pixels") or signatures["serving_default"]
