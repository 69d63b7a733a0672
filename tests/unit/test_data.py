"""The binary reader, the two sources, the checks on bad files, and the pipelines."""
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app.data import cifar10, pipeline
from app.data.cifar10 import DataError, RECORD_BYTES
from app.model.recipes import fast, tutorial

SEED = np.array([1, 2])  # a stateless seed, as pipeline.augmentation_seed makes them


def data_config(**changes):
    settings = dict(source="synthetic", url="http://127.0.0.1:9/none.tar.gz", md5="0" * 32,
                    download_attempts=1, synthetic_train_examples=50, synthetic_test_examples=20,
                    synthetic_seed=0)
    settings.update(changes)
    return SimpleNamespace(**settings)


def handmade_record(label: int, red: int, green: int, blue: int) -> bytes:
    """One record: the label byte, then the red, green and blue planes of 32x32 bytes each."""
    return bytes([label]) + bytes([red]) * 1024 + bytes([green]) * 1024 + bytes([blue]) * 1024


def test_reader_decodes_handmade_records(tmp_path):
    batch = tmp_path / "batch.bin"
    first = bytearray(handmade_record(7, 10, 20, 30))
    first[1 + 1024 + 32 * 5 + 3] = 99  # green channel, row 5, column 3
    batch.write_bytes(bytes(first) + handmade_record(2, 200, 100, 0))

    images, labels = cifar10.read_records(batch, expected=2)

    assert labels.tolist() == [7, 2]
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    assert images[0, 0, 0].tolist() == [10, 20, 30]
    assert images[0, 5, 3].tolist() == [10, 99, 30]
    assert images[1, 31, 31].tolist() == [200, 100, 0]


@pytest.mark.parametrize("size_change", [-1, -RECORD_BYTES, +5, +RECORD_BYTES])
def test_wrong_length_file_is_refused(tmp_path, size_change):
    batch = tmp_path / "data_batch_1.bin"
    batch.write_bytes(b"\0" * (3 * RECORD_BYTES + size_change))
    with pytest.raises(DataError, match=rf"data_batch_1.bin: {3 * RECORD_BYTES + size_change:,} "
                                        rf"bytes, expected {3 * RECORD_BYTES:,} \(3 records"):
        cifar10.read_records(batch, expected=3)


def test_garbage_labels_are_refused(tmp_path):
    batch = tmp_path / "test_batch.bin"
    batch.write_bytes(handmade_record(3, 0, 0, 0) + handmade_record(200, 0, 0, 0))
    with pytest.raises(DataError, match="test_batch.bin: record 1 has label 200, expected 0-9"):
        cifar10.read_records(batch, expected=2)


def test_synthetic_set_has_the_real_layout_and_is_reproducible(tmp_path):
    batches = cifar10.prepare(data_config(), str(tmp_path))
    assert batches == tmp_path / "synthetic" / "cifar-10-batches-bin"
    assert sorted(p.name for p in batches.glob("*.bin")) == sorted(
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"])
    assert (batches / "data_batch_1.bin").stat().st_size == 10 * RECORD_BYTES
    assert (batches / "test_batch.bin").stat().st_size == 20 * RECORD_BYTES
    images, labels = cifar10.load_split(batches, "train")
    assert images.shape == (50, 32, 32, 3) and set(labels.tolist()) <= set(range(10))

    again = cifar10.prepare(data_config(), str(tmp_path / "again"))
    assert (again / "test_batch.bin").read_bytes() == (batches / "test_batch.bin").read_bytes()


def test_synthetic_set_is_regenerated_when_its_size_changes(tmp_path):
    cifar10.prepare(data_config(), str(tmp_path))
    batches = cifar10.prepare(data_config(synthetic_test_examples=30), str(tmp_path))
    assert (batches / "test_batch.bin").stat().st_size == 30 * RECORD_BYTES


def test_truncated_synthetic_batch_is_refused(tmp_path):
    batches = cifar10.prepare(data_config(), str(tmp_path))
    path = batches / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="data_batch_3.bin: .* truncated"):
        cifar10.load_split(batches, "train")


def test_missing_test_batch_is_refused(tmp_path):
    batches = cifar10.prepare(data_config(), str(tmp_path))
    (batches / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="test_batch.bin: missing"):
        cifar10.load_split(batches, "test")


def test_real_source_accepts_a_mounted_read_only_copy(tmp_path):
    batches = tmp_path / "cifar-10-batches-bin"
    batches.mkdir()
    for name in (*cifar10.TRAIN_FILES, cifar10.TEST_FILE):
        with open(batches / name, "wb") as batch:  # sparse: prepare looks at sizes, not bytes
            batch.truncate(cifar10.REAL_RECORDS_PER_FILE * cifar10.RECORD_BYTES)
    tmp_path.chmod(0o555)
    try:
        assert cifar10.prepare(data_config(source="cifar10"), str(tmp_path)) == batches
        (batches / "data_batch_1.bin").write_bytes(b"")
        with pytest.raises(DataError, match="data_batch_1.bin: 0 bytes, expected 30,730,000"):
            cifar10.prepare(data_config(source="cifar10"), str(tmp_path))
    finally:
        tmp_path.chmod(0o755)


def test_offline_without_data_says_what_to_do(tmp_path):
    with pytest.raises(DataError) as error:
        cifar10.prepare(data_config(source="cifar10"), str(tmp_path))
    message = str(error.value)
    assert "could not download CIFAR-10 after 1 attempts" in message
    assert "mount a folder holding cifar-10-batches-bin/" in message
    assert "data.source: synthetic" in message
    assert not list(tmp_path.glob("*.tar.gz*"))  # no partial download left behind


def _real_layout_archive() -> bytes:
    """A cifar-10-binary.tar.gz of the real sizes (all-zero images compress to almost nothing)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        batch = b"\0" * (cifar10.REAL_RECORDS_PER_FILE * RECORD_BYTES)
        for name in (*cifar10.TRAIN_FILES, cifar10.TEST_FILE):
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(batch)
            archive.addfile(info, io.BytesIO(batch))
    return buffer.getvalue()


@pytest.fixture
def archive_server():
    """Serves one archive over HTTP on 127.0.0.1, as the data set's home page would."""
    archive = _real_layout_archive()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            self.wfile.write(archive)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/cifar-10-binary.tar.gz",
                          md5=hashlib.md5(archive).hexdigest())
    server.shutdown()
    thread.join()


def test_download_is_verified_and_extracted(tmp_path, archive_server):
    batches = cifar10.prepare(data_config(source="cifar10", url=archive_server.url,
                                       md5=archive_server.md5), str(tmp_path))
    assert batches == tmp_path / "cifar-10-batches-bin"
    images, labels = cifar10.load_split(batches, "train")
    assert images.shape == (50_000, 32, 32, 3)
    assert not list(tmp_path.glob(".*"))[1:]  # only the lock file remains beside the data


def test_download_with_wrong_md5_is_refused(tmp_path, archive_server):
    with pytest.raises(DataError, match=r"cifar-10-binary.tar.gz: MD5 [0-9a-f]{32} does not match "
                                        r"the published f{32}"):
        cifar10.prepare(data_config(source="cifar10", url=archive_server.url, md5="f" * 32),
                     str(tmp_path))
    assert not (tmp_path / "cifar-10-batches-bin").exists()


def test_eval_dataset_sees_each_example_exactly_once():
    images = np.arange(23 * 32 * 32 * 3, dtype=np.int64).reshape(23, 32, 32, 3).astype(np.uint8)
    labels = np.arange(23, dtype=np.int32) % 10
    seen = [y for _, batch_labels in pipeline.eval_dataset(images, labels, 21, batch_size=5, size=24)
            for y in batch_labels.numpy().tolist()]
    assert seen == labels[:21].tolist()
    with pytest.raises(DataError, match="eval.num_examples is 24 but the test set holds only 23"):
        pipeline.eval_dataset(images, labels, 24, batch_size=5, size=24)


def test_training_batches_are_augmented_crops_standardized_per_image(tmp_path):
    batches = cifar10.prepare(data_config(), str(tmp_path))
    images, labels = cifar10.load_split(batches, "train")
    batch_images, batch_labels = next(iter(pipeline.training_dataset(images, labels, 16, tutorial.distort, seed=1)))
    assert batch_images.shape == (16, 24, 24, 3) and batch_labels.shape == (16,)
    per_image = batch_images.numpy().reshape(16, -1)
    np.testing.assert_allclose(per_image.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(per_image.std(axis=1), 1, atol=1e-2)


def test_without_an_augmentation_training_batches_are_the_uint8_images_themselves(tmp_path):
    # What a recipe that augments in the training step gets from the pipeline (fast's, at a GPU's
    # pace the host would need ~9 cores for its augmentation): the images as stored, by label.
    batches = cifar10.prepare(data_config(), str(tmp_path))
    images, labels = cifar10.load_split(batches, "train")
    batch_images, batch_labels = next(iter(pipeline.training_dataset(images, labels, 16, seed=1)))
    assert batch_images.dtype == np.uint8 and batch_images.shape == (16, 32, 32, 3)
    stored = {image.tobytes(): label for image, label in zip(images, labels)}
    assert ([stored[image.tobytes()] for image in batch_images.numpy()]
            == batch_labels.numpy().tolist())


def first_batches(images, labels, count: int, start_step: int = 0, seed: int = 1):
    batches = pipeline.training_dataset(images, labels, 16, tutorial.distort, seed=seed,
                                        start_step=start_step)
    return [(batch.numpy(), batch_labels.numpy()) for batch, batch_labels in batches.take(count)]


def test_training_batches_started_at_a_step_are_the_batches_of_that_step(tmp_path):
    # What makes a resumed run see what the unbroken one saw: batch s depends on (seed, s) only.
    images, labels = cifar10.load_split(cifar10.prepare(data_config(), str(tmp_path)), "train")
    from_start = first_batches(images, labels, 7)
    from_step_4 = first_batches(images, labels, 3, start_step=4)
    for (images_a, labels_a), (images_b, labels_b) in zip(from_start[4:], from_step_4):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    other_seed = first_batches(images, labels, 1, start_step=4, seed=2)
    assert not np.array_equal(other_seed[0][0], from_step_4[0][0])


@pytest.mark.parametrize("count, batch_size", [(40, 8), (40, 12), (10, 16), (10, 25)],
                         ids=["five batches an epoch", "batches across two epochs",
                              "a batch larger than the set", "a batch over three epochs"])
def test_each_epoch_takes_every_training_image_once_in_an_order_of_its_own(count, batch_size):
    images = np.zeros((count, 32, 32, 3), np.uint8)
    dataset = pipeline.training_dataset(images, np.arange(count, dtype=np.int32), batch_size,
                                        seed=5)
    epochs = 4
    drawn = np.concatenate([labels.numpy() for _, labels in
                            dataset.take(-(-epochs * count // batch_size))])
    orders = [drawn[epoch * count:(epoch + 1) * count].tolist() for epoch in range(epochs)]
    assert all(sorted(order) == list(range(count)) for order in orders), orders
    assert len({tuple(order) for order in orders}) == epochs and orders[0] != sorted(orders[0])


def test_crops_differ_between_images_of_a_batch():
    # The same image 64 times: random, per-image crops and flips must make copies differ.
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    augmented = tutorial.distort(np.repeat(image, 64, axis=0), SEED).numpy()
    distinct = {augmented[i].tobytes() for i in range(64)}
    assert len(distinct) > 32


def test_flip_and_translate_keeps_whole_images_shifted_by_at_most_4_pixels():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 14:18, 14:18] = 255  # a bright square in the middle
    augmented = fast.flip_and_translate(np.repeat(image, 64, axis=0), SEED).numpy()
    assert augmented.shape == (64, 32, 32, 3)
    centres = [np.argwhere(each[..., 0] > 0).mean(axis=0) for each in augmented]
    offsets = np.abs(np.array(centres) - 15.5)
    assert offsets.max() <= 4 and len({tuple(c) for c in np.round(centres, 1)}) > 8
