"""The export: TensorFlow Serving's layout, its two signatures, when a version is added, which are
kept, and that no version is ever half-written."""
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from app import compat
from app.volume import exports, layout
from app.data import image_files
from app.model import recipes
from app.model.serving import Classifier
from app.data.cifar10 import CLASS_NAMES
from app.model.recipes import fast, tutorial


def result(step, precision, loss=1.0):
    return {"step": step, "precision_at_1": precision, "loss": loss}


@pytest.fixture(scope="module")
def classifier():
    return Classifier(recipes.logits_model(tutorial.tutorial_cnn()), input_size=24,
                      test_time_flips=False)


def png(pixels: np.ndarray) -> bytes:
    return encoded(pixels, "PNG")


def encoded(pixels: np.ndarray, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format, **options)
    return buffer.getvalue()


def test_a_version_is_its_steps_folder_with_both_signatures_and_its_assets(tmp_path, classifier):
    folder = exports.export(classifier, result(1200, 0.5), tmp_path, keep=3)
    assert folder == tmp_path / "export" / "1200"
    loaded = tf.saved_model.load(str(folder))
    assert sorted(loaded.signatures) == sorted(exports.SIGNATURES)
    [bytes_spec] = loaded.signatures["serving_default"].structured_input_signature[1].values()
    assert bytes_spec.dtype == tf.string and bytes_spec.shape.as_list() == [None]
    [pixels_spec] = loaded.signatures["classify_pixels"].structured_input_signature[1].values()
    assert pixels_spec.dtype == tf.uint8 and pixels_spec.shape.as_list() == [None, 32, 32, 3]
    assert (folder / "assets" / "class_names.txt").read_text().split() == list(CLASS_NAMES)
    assert json.loads((folder / "assets" / "evaluation.json").read_text())["step"] == 1200
    assert [name.decode() for name in loaded.class_names.numpy()] == list(CLASS_NAMES)


def test_both_signatures_classify_alike_and_answer_probabilities_and_names(tmp_path, classifier):
    loaded = tf.saved_model.load(str(exports.export(classifier, result(1, 0.5), tmp_path, keep=3)))
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    by_pixels = loaded.signatures["classify_pixels"](images=tf.constant(images))
    by_files = loaded.signatures["serving_default"](
        image_bytes=tf.constant([png(image) for image in images]))
    assert by_pixels["probabilities"].shape == (5, 10)
    assert np.sum(by_pixels["probabilities"].numpy(), axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    np.testing.assert_allclose(by_files["probabilities"], by_pixels["probabilities"], atol=1e-6)
    class_ids = by_pixels["class_ids"].numpy()
    assert class_ids.tolist() == np.argmax(by_pixels["probabilities"].numpy(), axis=1).tolist()
    assert [name.decode() for name in by_files["class_names"].numpy()] == [
        CLASS_NAMES[i] for i in class_ids]


def test_better_means_higher_precision_then_lower_loss(tmp_path, classifier):
    assert exports.improves_on_export(result(100, 0.5), tmp_path)  # nothing exported yet
    exports.export(classifier, result(100, 0.5, loss=1.0), tmp_path, keep=3)
    assert exports.improves_on_export(result(200, 0.6, loss=2.0), tmp_path)
    assert exports.improves_on_export(result(200, 0.5, loss=0.9), tmp_path)
    assert not exports.improves_on_export(result(200, 0.5, loss=1.0), tmp_path)
    assert not exports.improves_on_export(result(200, 0.4, loss=0.1), tmp_path)


def test_the_newest_versions_are_kept_and_the_newest_is_the_best(tmp_path, classifier):
    for step, precision in ((100, 0.3), (200, 0.4), (300, 0.5), (400, 0.6)):
        exports.export(classifier, result(step, precision), tmp_path, keep=3)
    assert exports.versions(tmp_path) == [200, 300, 400]
    assert exports.newest(tmp_path) == tmp_path / "export" / "400"
    assert exports.exported_evaluation(tmp_path)["precision_at_1"] == 0.6


def test_an_export_from_before_versions_is_still_found(tmp_path):
    best = tmp_path / "export" / "best"
    best.mkdir(parents=True)
    (best / "saved_model.pb").write_bytes(b"")
    (best / "evaluation.json").write_text(json.dumps(result(50, 0.2)))
    assert exports.newest(tmp_path) == best
    assert exports.exported_evaluation(tmp_path)["step"] == 50


def test_a_failed_export_leaves_the_versions_there_are(tmp_path, classifier, monkeypatch):
    exports.export(classifier, result(100, 0.5), tmp_path, keep=3)

    def disk_full(*arguments, **keywords):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", disk_full)
    with pytest.raises(OSError):
        exports.export(classifier, result(200, 0.6), tmp_path, keep=3)
    assert exports.versions(tmp_path) == [100]
    assert sorted(path.name for path in (tmp_path / "export").iterdir()) == ["100"]


def test_recover_clears_what_a_kill_left(tmp_path, classifier):
    exports.export(classifier, result(100, 0.5), tmp_path, keep=3)
    root = tmp_path / "export"
    (root / f"{layout.EXPORT_STAGING_PREFIX}12345").mkdir()  # a staging folder left behind
    (root / compat.OLD_EXPORT_STEPPED_ASIDE).mkdir()        # and an old-style export aside
    exports.recover(tmp_path)
    assert sorted(path.name for path in root.iterdir()) == ["100", "best"]


def test_test_time_flips_average_the_logits_of_each_image_and_its_mirror():
    logits_model = recipes.logits_model(fast.resnet9(width=4))
    classifier = Classifier(logits_model, input_size=32, test_time_flips=True)
    images = tf.random.normal([3, 32, 32, 3])
    expected = (logits_model(images) + logits_model(tf.reverse(images, axis=[2]))) / 2
    assert np.allclose(classifier.logits(images), expected, atol=1e-5)
    assert np.allclose(classifier.logits(tf.reverse(images, axis=[2])), expected, atol=1e-5)


def test_the_serving_and_the_pillow_preparation_of_a_file_agree():
    rng = np.random.default_rng(3)
    smooth = np.kron(rng.integers(0, 256, (12, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    image = Image.fromarray(smooth)  # 96 x 64, not square: its centred 64 x 64 counts
    by_pillow = image_files.like_cifar10(image)
    by_tensorflow = image_files.decoded_like_cifar10(tf.constant(png(smooth))).numpy()
    assert by_pillow.shape == by_tensorflow.shape == (32, 32, 3)
    assert np.abs(by_pillow.astype(int) - by_tensorflow.astype(int)).max() <= 2


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_32_pixel_jpeg_gives_the_same_pixels_to_serving_as_to_predict(mode):
    # At 32 x 32 nothing is scaled: what differs can only be the decoding.
    rng = np.random.default_rng(4)
    pixels = np.clip(np.cumsum(rng.integers(-12, 13, (32, 32, 3)), axis=1) + 128, 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8)).convert(mode)
    jpeg = encoded(np.asarray(image), "JPEG", quality=90)
    by_pillow = image_files.like_cifar10(Image.open(io.BytesIO(jpeg)))
    by_tensorflow = image_files.decoded_like_cifar10(tf.constant(jpeg)).numpy()
    np.testing.assert_array_equal(by_tensorflow, by_pillow)
