"""A run's best model so far, as TensorFlow Serving loads it: <run>/export/<version>/, each
version a SavedModel named by its checkpoint's global step, with the class names and the
evaluation that made it the best in its assets/ (the names are drawn in app/volume/layout.py).

Eval exports whenever an evaluation beats the newest export: a higher precision @ 1, or the same
precision with a lower loss. What it exports are the weights it has just measured (the moving
averages by default, eval.use_moving_averages) in the module eval measures through
(app/model/serving.py), so the export classifies exactly as eval counted. A later version is always
a better model, so TensorFlow Serving, which serves the highest version it finds, serves the best
model as soon as it is written; the newest `export.keep` versions are kept.

A SavedModel needs neither this package nor Keras to load (tf.saved_model.load, or Serving). Each
is written to a staging folder (a name Serving ignores) and renamed into place: a version folder is
always one complete export. Finding exports needs no TensorFlow. An export from before versions
(export/best/) is still found, until the run's first version (app/compat.py).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from app import compat
from app.data import cifar10
from app.volume import layout
from app.volume.results import goodness

SIGNATURES = ("serving_default", "classify_pixels")


def folder(run_folder) -> Path:
    return Path(run_folder) / layout.EXPORT_FOLDER


def versions(run_folder) -> list[int]:
    """The versions exported, oldest first."""
    root = folder(run_folder)
    if not root.is_dir():
        return []
    return sorted(int(path.name) for path in root.iterdir()
                  if path.name.isdigit() and (path / layout.SAVED_MODEL_FILE).is_file())


def newest(run_folder) -> Path | None:
    """The best export: the newest version, else an export from before versions."""
    found = versions(run_folder)
    if found:
        return folder(run_folder) / str(found[-1])
    return compat.old_best_export(folder(run_folder))


def evaluation_of(export_folder: Path) -> dict | None:
    """The evaluation that made `export_folder` the best, or None when it is unknown."""
    assets = export_folder / layout.EXPORT_ASSETS_FOLDER
    for path in (assets / layout.EXPORT_EVALUATION_FILE,
                 compat.old_evaluation_file(export_folder)):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
    return None


def exported_evaluation(run_folder) -> dict | None:
    """The evaluation behind the run's best export, or None when nothing is exported."""
    best = newest(run_folder)
    return evaluation_of(best) if best else None


def improves_on_export(result: dict, run_folder) -> bool:
    exported = exported_evaluation(run_folder)
    return exported is None or goodness(result) > goodness(exported)


def export(classifier, result: dict, run_folder, keep: int) -> Path:
    """Writes the classifier, its variables as they are now, as the version of result's step,
    and lets go of all but the newest `keep` versions. Raises OSError or a tf.errors.OpError when
    it cannot; the versions there are stay as they were."""
    import tensorflow as tf

    root = folder(run_folder)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{layout.EXPORT_STAGING_PREFIX}{os.getpid()}"
    target = root / str(result["step"])
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(classifier, str(staging), signatures={
            "serving_default": classifier.classify_files,
            "classify_pixels": classifier.classify_pixels})
        assets = staging / layout.EXPORT_ASSETS_FOLDER
        assets.mkdir(exist_ok=True)
        (assets / layout.EXPORT_CLASS_NAMES_FILE).write_text(
            "\n".join(cifar10.CLASS_NAMES) + "\n", encoding="utf-8")
        (assets / layout.EXPORT_EVALUATION_FILE).write_text(
            json.dumps(result, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)  # the same step exported before a kill
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for version in versions(run_folder)[:-keep]:
        shutil.rmtree(root / str(version), ignore_errors=True)
    return target


def recover(run_folder) -> None:
    """Clears unfinished staging folders, and puts back an export from before versions that a
    kill left stepped aside."""
    root = folder(run_folder)
    if not root.is_dir():
        return
    compat.put_back_old_export_stepped_aside(root)
    for unfinished in root.glob(f"{layout.EXPORT_STAGING_PREFIX}*"):
        shutil.rmtree(unfinished, ignore_errors=True)
