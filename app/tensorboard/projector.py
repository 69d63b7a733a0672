"""The Projector tab: a fixed sample of test images placed by what the network makes of them.

At an evaluation, eval passes the first `projector.examples` test images through the restored
network and hands the activations of the recipe's embedding layer (the tutorial's local4, 192
numbers an image; the fast recipe's features, 512) to `write`.
TensorBoard's Projector then shows them in PCA or T-SNE, each point a thumbnail from the sprite,
coloured by any column of the metadata: the true class, the predicted class, or whether the two
agree. Clusters that separate by class are what a network that has learned looks like.

Files (their names in app/volume/layout.py), in the eval run's folder where the projector looks
for them: a projector_config.pbtxt with one embedding per kept step, the newest first, and in
projector/ each step's activations (one image a row, e.g. local4-step-300.tsv), its metadata
(index, class, predicted, correct, a header row first), the sprite of the images' thumbnails in a
square grid, 32x32 each, and a marker checkpoint (see MARKER_NAME). The run's own folder gets a
projector_config.pbtxt of the same embeddings, for the training run's view.

The training run needs the config too: TensorBoard's projector lists every run that holds a
checkpoint, the training run first, and would open on the first of the trainer's weight matrices;
with the config, every run's first view is the test images, newest step first (the weight
matrices follow in the drop-down).

The newest KEPT_STEPS embeddings are kept, so the drop-down can show the clusters forming.
Each step's embedding has its own name and files: the projector caches a tensor by its name for
the life of the TensorBoard process, and a reused name would pair old points with new labels.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins.projector import ProjectorConfig

from app.data.cifar10 import IMAGE_SIZE
from app.volume import layout
from app.volume.atomic import write_atomically, write_text_atomically

KEPT_STEPS = 5
# TensorBoard re-reads a run's projector config only when the run's newest checkpoint changes;
# without one of its own, the eval run would inherit the trainer's (in the run's folder), show
# the trainer's weight matrices as embeddings, and miss the embedding written after training's
# last checkpoint. This tiny checkpoint, renamed at every write, holds only the step it marks.
MARKER_NAME = f"{layout.PROJECTOR_FOLDER}/{layout.PROJECTOR_MARKER}"


def write(eval_dir: Path, step: int, layer: str, images: np.ndarray, labels: np.ndarray,
          embeddings: np.ndarray, predictions: np.ndarray, class_names) -> Path:
    """Writes one step's embedding (the activations of `layer`) beside the kept ones and points
    the projector at them. Returns the folder of the files."""
    folder = Path(eval_dir) / layout.PROJECTOR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    sprite = folder / _sprite_file(len(images))
    if not sprite.exists():  # the same sample every time: drawn once per sample size
        write_atomically(sprite, lambda path: Image.fromarray(sprite_grid(images)).save(
            path, format="PNG"))
    write_text_atomically(folder / _metadata_file(step),
                          metadata_table(labels, predictions, class_names))
    write_atomically(folder / _embedding_file(layer, step),
                     lambda path: np.savetxt(path, embeddings, fmt="%.5g", delimiter="\t"))
    # {step: images}: a sample size changed between runs leaves embeddings of another size.
    kept = {step: _count_lines(folder / _embedding_file(layer, step))
            for step in _newest_steps(folder, layer)}
    eval_dir = Path(eval_dir)
    # The eval run's config, and the training run's beside its checkpoints (see above).
    for config_folder, files_folder in (
            (eval_dir, layout.PROJECTOR_FOLDER),
            (eval_dir.parent, f"{eval_dir.name}/{layout.PROJECTOR_FOLDER}")):
        config = text_format.MessageToString(_config(layer, kept, files_folder))
        write_text_atomically(config_folder / layout.PROJECTOR_CONFIG_FILE, config)
    _forget_older_steps(folder, layer, kept)
    _mark(eval_dir, step)
    return folder


def sprite_grid(images: np.ndarray) -> np.ndarray:
    """The images [n, h, w, 3] side by side, row by row, in a square grid (the projector's
    sprite layout); the cells after the last image stay black."""
    count, height, width, channels = images.shape
    side = math.ceil(math.sqrt(count))
    grid = np.zeros((side * side, height, width, channels), dtype=np.uint8)
    grid[:count] = images
    return (grid.reshape(side, side, height, width, channels)
            .transpose(0, 2, 1, 3, 4).reshape(side * height, side * width, channels))


def metadata_table(labels: np.ndarray, predictions: np.ndarray, class_names) -> str:
    """One row per image, in sprite order. With more than one column the projector expects a
    header row; each column can colour the points."""
    rows = ["index\tclass\tpredicted\tcorrect"]
    for index, (label, prediction) in enumerate(zip(labels, predictions)):
        rows.append(f"{index}\t{class_names[label]}\t{class_names[prediction]}\t"
                    f"{'yes' if label == prediction else 'no'}")
    return "\n".join(rows) + "\n"


def _embedding_file(layer: str, step: int) -> str:
    return layout.PROJECTOR_EMBEDDING_FILE.format(layer=layer, step=step)


def _metadata_file(step: int) -> str:
    return layout.PROJECTOR_METADATA_FILE.format(step=step)


def _sprite_file(images: int) -> str:
    return layout.PROJECTOR_SPRITE_FILE.format(images=images)


def _regex_of(pattern: str, number: str, **fields) -> re.Pattern:
    """What matches the names `pattern` (a name of app/volume/layout.py) gives, its other fields
    filled in, for any whole `number`: that number is the match's group 1."""
    before, after = pattern.split(f"{{{number}}}")
    return re.compile(re.escape(before.format(**fields)) + r"(\d+)"
                      + re.escape(after.format(**fields)))


def _newest_steps(folder: Path, layer: str) -> list[int]:
    pattern = _regex_of(layout.PROJECTOR_EMBEDDING_FILE, "step", layer=layer)
    steps = [int(match.group(1)) for path in folder.iterdir()
             if (match := pattern.fullmatch(path.name))]
    return sorted(steps, reverse=True)[:KEPT_STEPS]


def _config(layer: str, kept: dict[int, int], files_folder: str) -> ProjectorConfig:
    """The embeddings of the kept steps, their files in `files_folder`, relative to the folder
    of the config itself."""
    config = ProjectorConfig()
    for step, images in kept.items():
        embedding = config.embeddings.add()
        embedding.tensor_name = f"{layer} @ step {step}"
        embedding.tensor_path = f"{files_folder}/{_embedding_file(layer, step)}"
        embedding.metadata_path = f"{files_folder}/{_metadata_file(step)}"
        embedding.sprite.image_path = f"{files_folder}/{_sprite_file(images)}"
        embedding.sprite.single_image_dim.extend([IMAGE_SIZE, IMAGE_SIZE])
    return config


def _forget_older_steps(folder: Path, layer: str, kept: dict[int, int]) -> None:
    referenced = {_sprite_file(images) for images in kept.values()}
    embedding_files = _regex_of(layout.PROJECTOR_EMBEDDING_FILE, "step", layer=layer)
    metadata_files = _regex_of(layout.PROJECTOR_METADATA_FILE, "step")
    sprite_files = _regex_of(layout.PROJECTOR_SPRITE_FILE, "images")
    for path in folder.iterdir():
        match = embedding_files.fullmatch(path.name) or metadata_files.fullmatch(path.name)
        stale = match and int(match.group(1)) not in kept
        unused_sprite = sprite_files.fullmatch(path.name) and path.name not in referenced
        left_by_a_kill = path.name.startswith(layout.TEMPORARY_PREFIX)  # a write_atomically's
        if stale or unused_sprite or left_by_a_kill:
            path.unlink(missing_ok=True)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as lines:
        return sum(1 for _ in lines)


def _mark(eval_dir: Path, step: int) -> None:
    marker = tf.train.Checkpoint(step=tf.Variable(step, dtype=tf.int64))
    tf.train.CheckpointManager(marker, str(eval_dir), max_to_keep=1,
                               checkpoint_name=MARKER_NAME).save(checkpoint_number=step)

