"""CIFAR-10 in its binary layout: find or fetch it, check it, and read it into memory.

Both sources end in the same folder layout, read by the same reader:

    <dir>/cifar-10-batches-bin/data_batch_1.bin .. data_batch_5.bin, test_batch.bin

each file a run of records of one label byte followed by 3,072 image bytes (3 channels of 32x32,
channel-major). The real set comes from the data set's home page (downloaded once, checked against
its published MD5) or from a mounted folder; the synthetic set is generated here, learnable, in
exactly that layout.

The images stay in memory as uint8 (150 MB for the real training set), which the pipelines
(app/data/pipeline.py) feed to TensorFlow.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from app.exit_codes import AppError

IMAGE_SIZE = 32
CHANNELS = 3
NUM_CLASSES = 10
RECORD_BYTES = 1 + IMAGE_SIZE * IMAGE_SIZE * CHANNELS
REAL_RECORDS_PER_FILE = 10_000
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
BATCHES_FOLDER = "cifar-10-batches-bin"
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
SYNTHETIC_MANIFEST = "synthetic.json"
# The synthetic set's generator: a set on a volume written by another one is written anew.
SYNTHETIC_GENERATOR = 2
# The share of the synthetic training images that show no pattern (_write_synthetic_set says why).
SYNTHETIC_BLANK_SHARE = 0.2

log = logging.getLogger(__name__)


class DataError(AppError):
    """The data cannot be used as it is; the message says what, where, and what to do."""
    log_prefix = "data error"


# ---------------------------------------------------------------------------------------------
# Finding, fetching or generating the files
# ---------------------------------------------------------------------------------------------

def prepare(data_config, data_dir: str) -> Path:
    """Makes sure the binary batches exist, each of its full size, and returns their folder."""
    if data_config.source == "synthetic":
        batches = _prepare_synthetic(data_config, Path(data_dir) / "synthetic")
    else:
        batches = _prepare_real(data_config, Path(data_dir))
    # Every file, though train reads only five and eval one: neither starts on a damaged set.
    for name, records in expected_records(batches).items():
        _check_size(batches / name, records)
    return batches


def _prepare_real(data_config, data_dir: Path) -> Path:
    batches = data_dir / BATCHES_FOLDER
    if _all_files_present(batches):
        return batches
    if batches.is_dir() and any(batches.iterdir()):
        # Only a mounted copy is ever incomplete (an extraction is all or nothing), and a
        # download could not be extracted over it anyway.
        missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (batches / name).is_file()]
        raise DataError(f"{batches}: incomplete, {', '.join(missing)} missing. Mount a complete "
                        f"copy of CIFAR-10 there, or delete the folder to download it again")
    with _exclusive_lock(data_dir):  # train and eval may start at once; one downloads
        if _all_files_present(batches):
            return batches
        archive = data_dir / ARCHIVE_NAME
        if not archive.exists():
            _download(data_config.url, archive, data_config.download_attempts)
        _verify_md5(archive, data_config.md5)
        _extract(archive, data_dir)
    if not _all_files_present(batches):
        raise DataError(f"{archive}: the archive holds no complete {BATCHES_FOLDER}/ folder")
    return batches


def _all_files_present(batches: Path) -> bool:
    return all((batches / name).is_file() for name in (*TRAIN_FILES, TEST_FILE))


@contextlib.contextmanager
def _exclusive_lock(data_dir: Path):
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_file = open(data_dir / ".prepare.lock", "w")
    except OSError as error:
        raise DataError(
            f"{data_dir}: CIFAR-10 is not there ({BATCHES_FOLDER}/ with {', '.join(TRAIN_FILES)} "
            f"and {TEST_FILE}), and the folder is not writable to download it ({error.strerror})."
            f" Mount a folder holding {BATCHES_FOLDER}/ there, or set data.source: synthetic"
        ) from None
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _download(url: str, destination: Path, attempts: int) -> None:
    from tqdm import tqdm

    partial = destination.with_name(destination.name + ".part")
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out, \
                    tqdm(total=int(response.headers.get("Content-Length") or 0) or None,
                         unit="B", unit_scale=True, desc=f"downloading {url}", mininterval=5) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            os.replace(partial, destination)  # only a complete file ever gets the real name
            return
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            reason = getattr(error, "reason", None) or error
            log.info(f"download attempt {attempt}/{attempts} of {url} failed: {reason}")
            partial.unlink(missing_ok=True)
            if attempt < attempts:
                time.sleep(2 ** attempt)
    raise DataError(
        f"{url}: could not download CIFAR-10 after {attempts} attempts (no internet?). Either mount "
        f"a folder holding {BATCHES_FOLDER}/ (or {ARCHIVE_NAME}) at {destination.parent}, or set "
        f"data.source: synthetic for a demo")


def _verify_md5(archive: Path, expected_md5: str) -> None:
    digest = hashlib.md5()
    with open(archive, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected_md5.lower():
        raise DataError(
            f"{archive}: MD5 {digest.hexdigest()} does not match the published {expected_md5}; "
            f"the file is damaged or not CIFAR-10. Delete it to download it again")


def _extract(archive: Path, data_dir: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=data_dir))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging / BATCHES_FOLDER, data_dir / BATCHES_FOLDER)
    except (tarfile.TarError, OSError) as error:
        raise DataError(f"{archive}: cannot extract: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare_synthetic(data_config, root: Path) -> Path:
    wanted = {"train_examples": data_config.synthetic_train_examples,
              "test_examples": data_config.synthetic_test_examples,
              "seed": data_config.synthetic_seed, "generator": SYNTHETIC_GENERATOR}
    batches = root / BATCHES_FOLDER
    manifest = batches / SYNTHETIC_MANIFEST
    if manifest.exists() and json.loads(manifest.read_text()) == wanted:
        return batches
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generate-", dir=root))
    try:
        _write_synthetic_set(staging, **{k: wanted[k] for k in ("train_examples", "test_examples",
                                                                "seed")})
        (staging / SYNTHETIC_MANIFEST).write_text(json.dumps(wanted))
        retired = None
        if batches.exists():  # another size or seed: keep the old one aside until the swap is done
            retired = root / f".retired-{os.getpid()}"
            os.replace(batches, retired)
        os.replace(staging, batches)
        if retired:
            shutil.rmtree(retired, ignore_errors=True)
    except OSError as error:
        # A process beside us (train and eval start together) may have just put the same set in
        # place; its set is as good as ours.
        if not (manifest.exists() and json.loads(manifest.read_text()) == wanted):
            raise DataError(f"{root}: cannot write the synthetic data set: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return batches


def _write_synthetic_set(folder: Path, train_examples: int, test_examples: int, seed: int) -> None:
    """Writes a learnable set: each class is a colour and a stripe pattern, seen through noise.

    Stripes are horizontal or vertical at one of five frequencies, so a class survives the
    training crops and flips; the colour and noise vary per image, so it is not trivial.

    A share of the training images (SYNTHETIC_BLANK_SHARE; none of the test images) show only
    the noise, no pattern: nothing in them tells their class, so the loss cannot go to 0 (short
    of memorizing the noise) and the class scores stop growing. Without them the tutorial
    network fitted every training image within ~200 steps, and then plain SGD at the tutorial's
    rate of 0.1 overshot again and again, each time in every layer at once: its loss jumped back
    to chance level, and a jump that overflowed ended in NaN (bench/RESULTS.md, section 17). With
    them such jumps are rarer, and the recipe's clip of the gradient's norm
    (tutorial.gradient_clip_norm) stops the ones left. Every test image shows its pattern.
    """
    rng = np.random.default_rng(seed)
    class_colours = rng.uniform(0.2, 1.0, size=(NUM_CLASSES, CHANNELS))

    def records(count: int, blank_share: float) -> np.ndarray:
        labels = rng.integers(0, NUM_CLASSES, size=count)
        frequency = 1 + labels // 2          # 1..5 cycles across the image
        vertical = (labels % 2).astype(bool)
        phase = rng.uniform(0, 2 * np.pi, size=count)
        position = np.arange(IMAGE_SIZE) * 2 * np.pi / IMAGE_SIZE
        waves = np.sin(frequency[:, None] * position[None, :] + phase[:, None])  # [count, 32]
        pattern = np.where(vertical[:, None, None], waves[:, None, :], waves[:, :, None])
        pattern = np.broadcast_to(pattern, (count, IMAGE_SIZE, IMAGE_SIZE))
        colour = class_colours[labels] * rng.uniform(0.6, 1.4, size=(count, 1))
        colour *= rng.random((count, 1)) >= blank_share
        images = 128 + 48 * pattern[:, None] * colour[:, :, None, None]   # [count, 3, 32, 32]
        images += rng.normal(0, 64, size=images.shape)
        pixels = np.clip(images, 0, 255).astype(np.uint8).reshape(count, -1)
        return np.concatenate([labels.astype(np.uint8)[:, None], pixels], axis=1)

    per_file = np.array_split(np.arange(train_examples), len(TRAIN_FILES))
    for name, indices in zip(TRAIN_FILES, per_file):
        records(len(indices), SYNTHETIC_BLANK_SHARE).tofile(folder / name)
    records(test_examples, 0.0).tofile(folder / TEST_FILE)


# ---------------------------------------------------------------------------------------------
# Reading and checking the records
# ---------------------------------------------------------------------------------------------

def expected_records(batches: Path) -> dict[str, int]:
    """How many records each file must hold: 10,000 for the real set, the manifest's for ours."""
    manifest = batches / SYNTHETIC_MANIFEST
    if not manifest.exists():
        return {name: REAL_RECORDS_PER_FILE for name in (*TRAIN_FILES, TEST_FILE)}
    sizes = json.loads(manifest.read_text())
    per_file = np.array_split(np.arange(sizes["train_examples"]), len(TRAIN_FILES))
    counts = {name: len(indices) for name, indices in zip(TRAIN_FILES, per_file)}
    counts[TEST_FILE] = sizes["test_examples"]
    return counts


def read_records(path: Path, expected: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads one batch file into (uint8 images [N, 32, 32, 3], int32 labels [N])."""
    _check_size(path, expected)
    records = np.fromfile(path, dtype=np.uint8).reshape(expected, RECORD_BYTES)
    labels = records[:, 0].astype(np.int32)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, expected 0-9; "
                        f"the file is not a CIFAR-10 batch")
    images = records[:, 1:].reshape(expected, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)), labels


def _check_size(path: Path, expected: int) -> None:
    if not path.is_file():
        raise DataError(f"{path}: missing; the data set is incomplete")
    size = path.stat().st_size
    if size != expected * RECORD_BYTES:
        raise DataError(
            f"{path}: {size:,} bytes, expected {expected * RECORD_BYTES:,} ({expected:,} records of "
            f"{RECORD_BYTES} bytes); the file is truncated or not a CIFAR-10 batch. Delete the "
            f"folder to fetch or generate it again")


def load_split(batches: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All records of the 'train' or 'test' split, checked, in memory."""
    counts = expected_records(batches)
    names = TRAIN_FILES if split == "train" else (TEST_FILE,)
    parts = [read_records(batches / name, counts[name]) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

