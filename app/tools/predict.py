"""`python -m app predict FILE... [--top K] [--json]`: classify images of your own.

    $ python -m app predict cat.jpg photos/
    using run default's export of step 3400 (precision @ 1 = 0.812): /cifar10_train/default/export/3400
    cat.jpg: cat 0.83, dog 0.09, deer 0.03
    photos/truck.png: truck 0.97, automobile 0.02, ship 0.00
    photos/notes.png: error: not an image Pillow can read (cannot identify image file)

PNG, JPEG, BMP and GIF files of any size and mode (grey, RGBA, palette) are brought to 32x32 RGB as
app/data/image_files.py says (the centred square, scaled down, with Pillow), and classified by the run's
best export (app/volume/exports.py), or, before its first export, by its newest checkpoint's averaged
weights; the first line says which. A folder stands for the image files in it; a pattern such as
`/images/*.jpg` that the shell left alone is expanded here. One line per file; with --json one
JSON object per file instead ({"file", "predictions": [{"class", "probability"}...]} or
{"file", "error"}), the model named on stderr. A file that is missing or is not an image gets a
line naming it, the others are still classified, and the exit code is 2 at the end.
"""
from __future__ import annotations

import glob
import json
import logging
import sys
from pathlib import Path

import numpy as np

from app import compat
from app.volume import checkpoints, exports, runs
from app.data import image_files
from app.data.cifar10 import CLASS_NAMES
from app.exit_codes import AppError, ExitCode

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
BATCH = 256


class NothingToPredictWith(AppError):
    """The run has neither an export nor a checkpoint."""


def main(config, paths: list[str], top: int, as_json: bool) -> int:
    files = files_named(paths)
    model, described = load_model(config)
    print(f"using {described}", file=sys.stderr if as_json else sys.stdout, flush=True)
    failed = False
    for start in range(0, len(files), BATCH):
        batch = files[start:start + BATCH]
        pixels, problems = read_images(batch)
        readable = [path for path in batch if path not in problems]
        probabilities = model(np.stack([pixels[path] for path in readable])) if readable else []
        by_file = dict(zip(readable, probabilities))
        for path in batch:
            if path in problems:
                failed = True
                print(json.dumps({"file": path, "error": problems[path]}) if as_json
                      else f"{path}: error: {problems[path]}", flush=True)
            else:
                ranked = np.argsort(-by_file[path])[:top]
                answer = [(CLASS_NAMES[index], float(by_file[path][index])) for index in ranked]
                print(json.dumps({"file": path, "predictions": [
                          {"class": name, "probability": round(p, 6)} for name, p in answer]})
                      if as_json else f"{path}: "
                      + ", ".join(f"{name} {p:.2f}" for name, p in answer), flush=True)
    return ExitCode.BAD_INPUT if failed else ExitCode.DONE


def files_named(paths: list[str]) -> list[str]:
    """The files to classify, in the order given: a folder's image files sorted by name, a
    pattern's matches, anything else as it is (so that a missing file gets its own line)."""
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files += sorted(str(child) for child in path.iterdir()
                            if child.suffix.lower() in IMAGE_SUFFIXES and child.is_file())
        elif not path.exists() and glob.has_magic(given):
            files += sorted(glob.glob(given)) or [given]
        else:
            files.append(given)
    return files


def read_images(paths: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each file as uint8 [32, 32, 3], and for those that could not be read, why."""
    from PIL import Image, UnidentifiedImageError

    pixels, problems = {}, {}
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels[path] = image_files.like_cifar10(image)
        except FileNotFoundError:
            problems[path] = "no such file"
        except IsADirectoryError:
            problems[path] = "a folder without image files"
        except UnidentifiedImageError as error:
            problems[path] = f"not an image Pillow can read ({error})"
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            problems[path] = f"cannot read it as an image ({error})"
    return pixels, problems


def load_model(config):
    """The run's best export, else its newest checkpoint's weights (the moving averages unless
    eval.use_moving_averages is false): a function of uint8 [N, 32, 32, 3] to probabilities
    [N, 10], and what it is, in words."""
    run_folder = runs.folder(config.paths.train_dir, config.paths.run)
    best = exports.newest(run_folder)
    if best is not None:
        return _from_export(best, config.paths.run)
    newest = checkpoints.newest(run_folder)
    if newest is None:
        raise NothingToPredictWith(
            f"run '{config.paths.run}' ({run_folder}) has no export and no checkpoint yet: train "
            f"it first, or name another run (paths.run)")
    return _from_checkpoint(config, newest)


def _from_export(folder: Path, run: str):
    import tensorflow as tf

    classify = compat.pixels_signature(tf.saved_model.load(str(folder)).signatures)
    evaluation = exports.evaluation_of(folder) or {}
    precision = (f" (precision @ 1 = {evaluation['precision_at_1']:.3f})"
                 if "precision_at_1" in evaluation else "")
    described = f"run {run}'s export of step {evaluation.get('step', '?')}{precision}: {folder}"
    return (lambda images: classify(images=tf.constant(images))["probabilities"].numpy(),
            described)


def _from_checkpoint(config, checkpoint: Path):
    import tensorflow as tf

    from app.config import config_of_run
    from app.model.evaluation_model import EvaluationModel

    model = EvaluationModel(config_of_run(config, config.paths.run))
    model.read(checkpoint)
    weights = "the moving averages" if model.use_moving_averages else "the raw weights"
    described = (f"run {config.paths.run}'s newest checkpoint, {checkpoint.name} ({weights}; it "
                 f"has no export yet)")
    return (lambda images: model.classifier.classify_pixels(tf.constant(images))[
        "probabilities"].numpy(), described)

