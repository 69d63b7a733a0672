"""The export: its serving signature, when it replaces the previous one, and that it never
leaves a half-written `best`."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from app import export, recipes
from app.recipes import fast, tutorial
from app.data import CLASS_NAMES


def result(step, precision, loss=1.0):
    return {"step": step, "precision_at_1": precision, "loss": loss}


@pytest.fixture(scope="module")
def classifier():
    return export.Classifier(recipes.logits_model(tutorial.tutorial_cnn()), input_size=24,
                             test_time_flips=False)


def test_signature_takes_uint8_images_and_returns_probabilities_and_names(tmp_path,
                                                                         classifier):
    folder = export.export(classifier, result(100, 0.5), tmp_path)
    assert folder == tmp_path / "export" / "best"
    loaded = tf.saved_model.load(str(folder))
    serve = loaded.signatures["serving_default"]
    [images_spec] = serve.structured_input_signature[1].values()
    assert images_spec.dtype == tf.uint8 and images_spec.shape.as_list() == [None, 32, 32, 3]
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    outputs = serve(images=tf.constant(images))
    assert outputs["probabilities"].shape == (5, 10)
    assert np.sum(outputs["probabilities"].numpy(), axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    class_ids = outputs["class_ids"].numpy()
    assert class_ids.tolist() == np.argmax(outputs["probabilities"].numpy(), axis=1).tolist()
    assert [name.decode() for name in outputs["class_names"].numpy()] == [
        CLASS_NAMES[i] for i in class_ids]
    assert [name.decode() for name in loaded.class_names.numpy()] == list(CLASS_NAMES)
    assert json.loads((folder / "evaluation.json").read_text())["step"] == 100


def test_better_means_higher_precision_then_lower_loss(tmp_path, classifier):
    assert export.improves_on_export(result(100, 0.5), tmp_path)  # nothing exported yet
    export.export(classifier, result(100, 0.5, loss=1.0), tmp_path)
    assert export.improves_on_export(result(200, 0.6, loss=2.0), tmp_path)
    assert export.improves_on_export(result(200, 0.5, loss=0.9), tmp_path)
    assert not export.improves_on_export(result(200, 0.5, loss=1.0), tmp_path)
    assert not export.improves_on_export(result(200, 0.4, loss=0.1), tmp_path)


def test_a_new_export_replaces_the_old_one_whole(tmp_path, classifier):
    export.export(classifier, result(100, 0.5), tmp_path)
    export.export(classifier, result(200, 0.6), tmp_path)
    best = tmp_path / "export" / "best"
    assert json.loads((best / "evaluation.json").read_text())["step"] == 200
    assert sorted(path.name for path in (tmp_path / "export").iterdir()) == ["best"]


def test_a_failed_export_leaves_the_previous_one(tmp_path, classifier, monkeypatch):
    export.export(classifier, result(100, 0.5), tmp_path)

    def disk_full(*arguments, **keywords):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", disk_full)
    with pytest.raises(OSError):
        export.export(classifier, result(200, 0.6), tmp_path)
    assert json.loads((tmp_path / "export" / "best" / "evaluation.json").read_text())["step"] == 100
    assert sorted(path.name for path in (tmp_path / "export").iterdir()) == ["best"]


def test_recover_puts_back_an_export_a_kill_left_stepped_aside(tmp_path, classifier):
    export.export(classifier, result(100, 0.5), tmp_path)
    root = tmp_path / "export"
    os.replace(root / "best", root / export.PREVIOUS)       # killed between the two renames
    (root / f"{export.STAGING_PREFIX}12345").mkdir()        # and a staging folder left behind
    export.recover(tmp_path)
    assert sorted(path.name for path in root.iterdir()) == ["best"]
    assert json.loads((root / "best" / "evaluation.json").read_text())["step"] == 100


def test_test_time_flips_average_the_logits_of_each_image_and_its_mirror():
    logits_model = recipes.logits_model(fast.resnet9(width=4))
    classifier = export.Classifier(logits_model, input_size=32, test_time_flips=True)
    images = tf.random.normal([3, 32, 32, 3])
    expected = (logits_model(images) + logits_model(tf.reverse(images, axis=[2]))) / 2
    assert np.allclose(classifier.logits(images), expected, atol=1e-5)
    assert np.allclose(classifier.logits(tf.reverse(images, axis=[2])), expected, atol=1e-5)
