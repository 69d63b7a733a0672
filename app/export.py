"""The best model so far, as a SavedModel anyone can load: <run>/export/best.

Eval exports whenever an evaluation beats the one exported: a higher precision @ 1, or the same
precision with a lower loss. What it exports are the weights it has just measured, the moving
averages by default (eval.use_moving_averages), so the export classifies exactly as eval counted.

The SavedModel needs neither this package nor Keras to load (tf.saved_model.load). Its serving
signature takes what a camera or a file gives, not what the network sees:

    serving_default(images: uint8 [batch, 32, 32, 3])
        -> probabilities  float32 [batch, 10]  softmax, columns in CIFAR-10's class order
           class_ids      int32   [batch]      the most probable class
           class_names    string  [batch]      its name

It crops, standardizes (and with the fast recipe, mirrors) as eval does. `class_names` is also an
attribute of the loaded object, all ten names in column order. Beside saved_model.pb, evaluation.json records the evaluation that
made it the best (step, precision_at_1, loss, checkpoint, weights).

Exports are atomic: the SavedModel is written to a staging folder beside `best` and renamed into
place, so `best` is always one complete export (a kill midway leaves the previous one).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from app import data, results

EVALUATION_FILE = results.EXPORTED_EVALUATION.name
STAGING_PREFIX = ".staging-"
PREVIOUS = ".previous"


class Classifier(tf.Module):
    """The network as eval counts it, and as the export serves it: uint8 images in, class
    probabilities and names out. Eval measures through `logits`, so what is exported classifies
    exactly as it was measured."""

    def __init__(self, logits_model, input_size: int, test_time_flips: bool):
        super().__init__(name="cifar10_classifier")
        self.logits_model = logits_model
        self.input_size = input_size            # the central crop the network was trained for
        self.test_time_flips = test_time_flips  # the fast recipe also looks at each mirror image
        # A variable, not a constant: only variables are saved as attributes of the module.
        self.class_names = tf.Variable(data.CLASS_NAMES, trainable=False, name="class_names")

    def logits(self, standardized_images):
        logits = self.logits_model(standardized_images, training=False)
        if self.test_time_flips:
            mirrored = self.logits_model(tf.reverse(standardized_images, axis=[2]), training=False)
            logits = (logits + mirrored) / 2
        return logits

    @tf.function(input_signature=[tf.TensorSpec(
        [None, data.IMAGE_SIZE, data.IMAGE_SIZE, data.CHANNELS], tf.uint8, name="images")])
    def classify(self, images):
        logits = self.logits(data.eval_images(images, self.input_size))
        # Mixed precision may compute in 16 bits; the answer is served in 32.
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {"probabilities": probabilities, "class_ids": class_ids,
                "class_names": tf.gather(self.class_names, class_ids)}


def best_folder(run_folder) -> Path:
    return Path(run_folder) / results.EXPORTED_EVALUATION.parent


def improves_on_export(result: dict, run_folder) -> bool:
    exported = results.exported_evaluation(run_folder)
    return exported is None or results.goodness(result) > results.goodness(exported)


def export(classifier: Classifier, result: dict, run_folder) -> Path:
    """Writes the classifier, its variables as they are now, to export/best. Raises OSError or
    a tf.errors.OpError when it cannot; `best` is then the previous export, untouched."""
    export_root = best_folder(run_folder).parent
    export_root.mkdir(parents=True, exist_ok=True)
    staging = export_root / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(classifier, str(staging),
                            signatures={"serving_default": classifier.classify})
        (staging / EVALUATION_FILE).write_text(json.dumps(result, indent=2) + "\n",
                                               encoding="utf-8")
        _swap_into_place(staging, best_folder(run_folder))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return best_folder(run_folder)


def _swap_into_place(staging: Path, best: Path) -> None:
    """A folder cannot be renamed over a non-empty one, so the old export steps aside first; for
    that instant `best` is absent, never partial. recover() undoes a kill in between."""
    previous = best.parent / PREVIOUS
    shutil.rmtree(previous, ignore_errors=True)
    if best.exists():
        os.replace(best, previous)
    os.replace(staging, best)
    shutil.rmtree(previous, ignore_errors=True)


def recover(run_folder) -> None:
    """Puts back an export that a kill left stepped aside, and clears unfinished staging."""
    best = best_folder(run_folder)
    export_root = best.parent
    if not export_root.is_dir():
        return
    previous = export_root / PREVIOUS
    if previous.is_dir() and not best.exists():
        os.replace(previous, best)
    for leftover in export_root.iterdir():
        if leftover.name.startswith(STAGING_PREFIX) or leftover.name == PREVIOUS:
            shutil.rmtree(leftover, ignore_errors=True)
