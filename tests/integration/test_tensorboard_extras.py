"""What eval adds beyond the tutorial, checked on a real synthetic run as a user would check it.

One short run is shared: 300 steps with a checkpoint every 100, then the eval watcher over all
three (the projector written at every second evaluation and at max_steps), then `report`. Each
test checks one thing: the class breakdown and PR curves in TensorBoard's files, the projector's
files and TensorBoard's projector serving them, the export classifying in a process of its own,
the report's table and plot, and the HParams tab comparing two runs side by side.
"""
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from app.volume import exports
from app.exit_codes import ExitCode
from app.volume.results import read_results
from tests.harness.environment import REPO_ROOT, app_environment, run_app, settings

pytestmark = pytest.mark.slow

MAX_STEPS = 300
EVALUATED_STEPS = [100, 200, 300]
PROJECTED_STEPS = [300, 100]  # evaluations 1 and 3 of 3 (every second, and max_steps), newest first
TEST_IMAGES = 1000
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")


RUN = {  # the run the tests share (settings() adds its folders and the synthetic set)
    "data.synthetic_train_examples": 5000, "data.synthetic_test_examples": TEST_IMAGES,
    "train.max_steps": MAX_STEPS, "train.batch_size": 64,
    "runtime.checkpoint_every_steps": 100, "runtime.checkpoint_min_gap_secs": "null",
    "runtime.summary_every_steps": 1000,
    "train.seed": 1, "eval.num_examples": TEST_IMAGES, "eval.every_secs": 1,
    "projector.examples": TEST_IMAGES, "projector.every_evals": 2,
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The run's root folder, after train, the eval watcher and report; and report's output."""
    root = tmp_path_factory.mktemp("extras")
    for command in (["train"], ["eval", "--until-done"]):
        finished = run_app(*command, *settings(root, RUN))
        assert finished.returncode == ExitCode.DONE, finished.stdout + finished.stderr
    report = run_app("report", "--run", "default", *settings(root, RUN))
    assert report.returncode == ExitCode.DONE, report.stdout + report.stderr
    return root, report.stdout


def read_test_set(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic test set, read straight from its binary file: images, labels."""
    records = np.fromfile(root / "data" / "synthetic" / "cifar-10-batches-bin" / "test_batch.bin",
                          dtype=np.uint8).reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0]


def results(root: Path) -> list[dict]:
    return read_results(root / "train" / "default" / "eval")


def eval_events(root: Path) -> event_accumulator.EventAccumulator:
    accumulator = event_accumulator.EventAccumulator(
        str(root / "train" / "default" / "eval"), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return accumulator


def test_eval_shows_each_class_its_confusion_and_its_pr_curve(evaluated):
    root, _ = evaluated
    events = eval_events(root)
    plugins = {tag: events.SummaryMetadata(tag).plugin_data.plugin_name
               for tag in events.Tags()["tensors"]}
    expected = {"precision @ 1": "scalars", "cross_entropy": "scalars",
                "confusion_matrix": "images"}
    for name in CLASS_NAMES:
        expected.update({f"precision/{name}": "scalars", f"recall/{name}": "scalars",
                         f"pr_curves/{name}": "pr_curves"})
    assert {tag: plugins.get(tag) for tag in expected} == expected
    for tag in ("confusion_matrix", "pr_curves/cat", "recall/cat"):
        assert [event.step for event in events.Tensors(tag)] == EVALUATED_STEPS

    # The recalls, weighted by class size, add up to precision @ 1: the same pass counted both.
    _, labels = read_test_set(root)
    class_sizes = np.bincount(labels, minlength=10)
    final_recall = [float(tensor_util.make_ndarray(events.Tensors(f"recall/{name}")[-1]
                                                   .tensor_proto)) for name in CLASS_NAMES]
    weighted = sum(recall * size for recall, size in zip(final_recall, class_sizes))
    assert weighted / TEST_IMAGES == pytest.approx(results(root)[-1]["precision_at_1"], abs=1e-3)

    # The confusion matrix is a real picture: width, height, then the PNG.
    width, height, png = events.Tensors("confusion_matrix")[-1].tensor_proto.string_val
    assert png.startswith(b"\x89PNG") and int(width) > 440 and int(height) > 440

    # A PR curve: 6 rows (TP, FP, TN, FN, precision, recall) by thresholds; at the lowest
    # threshold every image counts as positive, so TP + FP is the whole test set.
    counts = tensor_util.make_ndarray(events.Tensors("pr_curves/cat")[-1].tensor_proto)
    assert counts.shape[0] == 6 and counts[0, 0] + counts[1, 0] == TEST_IMAGES


def test_projector_files_hold_the_sample_its_labels_and_sprite(evaluated):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import ProjectorConfig

    root, _ = evaluated
    eval_dir = root / "train" / "default" / "eval"
    config = text_format.Parse((eval_dir / "projector_config.pbtxt").read_text(),
                               ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == [
        f"local4 @ step {step}" for step in PROJECTED_STEPS]
    images, labels = read_test_set(root)
    newest = config.embeddings[0]
    tensor = np.loadtxt(eval_dir / newest.tensor_path, delimiter="\t")
    assert tensor.shape == (TEST_IMAGES, 192)
    header, *rows = [line.split("\t") for line in
                     (eval_dir / newest.metadata_path).read_text().splitlines()]
    assert header == ["index", "class", "predicted", "correct"] and len(rows) == TEST_IMAGES
    assert [row[1] for row in rows] == [CLASS_NAMES[label] for label in labels]
    # The sample is the whole eval set here, so its share of correct rows is precision @ 1.
    share_correct = sum(row[3] == "yes" for row in rows) / TEST_IMAGES
    assert share_correct == pytest.approx(results(root)[-1]["precision_at_1"], abs=1e-3)

    with Image.open(eval_dir / newest.sprite.image_path) as sprite:
        assert sprite.size == (32 * 32, 32 * 32)  # 1,000 thumbnails need a 32 x 32 grid
        sprite = np.asarray(sprite.convert("RGB"))
    assert (sprite[32:64, 64:96] == images[32 + 2]).all()  # row 1, column 2: image 34


def plugin_routes(plugin_class, logdir: Path) -> dict:
    """A TensorBoard plugin over logdir, as TensorBoard builds it: route -> a WSGI client."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=str(logdir), multiplexer=multiplexer,
        data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(logdir)))
    return {route: Client(app) for route, app in plugin_class(context).get_plugin_apps().items()}


def test_tensorboards_projector_opens_every_run_on_the_test_images(evaluated):
    """Whichever run the Projector's drop-down starts with (the training run, which it lists for
    its checkpoints), its first embedding is the test images', newest step first, with their
    sprite and labels; the trainer's weight matrices come only after them."""
    from tensorboard.plugins.projector import projector_plugin

    root, _ = evaluated
    routes = plugin_routes(projector_plugin.ProjectorPlugin, root / "train")  # the volume
    runs = routes["/runs"].get("/runs").json
    assert sorted(runs) == ["default", "default/eval"], runs
    projected = [f"local4 @ step {step}" for step in PROJECTED_STEPS]
    newest = projected[0]
    for run in runs:
        config = routes["/info"].get("/info", query_string={"run": run}).json
        names = [e["tensorName"] for e in config["embeddings"]]
        assert names[:len(projected)] == projected, (run, names[:5])
        query = {"run": run, "name": newest}
        tensor = routes["/tensor"].get("/tensor", query_string=query)
        assert tensor.status_code == 200 and len(tensor.data) == TEST_IMAGES * 192 * 4  # float32
        metadata = routes["/metadata"].get("/metadata", query_string=query)
        assert metadata.status_code == 200 and len(metadata.text.splitlines()) == TEST_IMAGES + 1
        sprite = routes["/sprite_image"].get("/sprite_image", query_string=query)
        assert sprite.status_code == 200 and sprite.data.startswith(b"\x89PNG")
    # Only eval's own embeddings in the eval run: not the trainer's weight matrices.
    eval_config = routes["/info"].get("/info", query_string={"run": "default/eval"}).json
    assert [e["tensorName"] for e in eval_config["embeddings"]] == projected


def test_hparams_compares_runs_that_share_a_parent_folder(evaluated, tmp_path):
    """Two runs, their learning rates apart, each with the eval history of the shared run: the
    HParams tab shows one row each, with its hyperparameters and eval's final precision."""
    from tensorboard.plugins.hparams import hparams_plugin

    root, _ = evaluated
    learning_rates = {"run_a": 0.1, "run_b": 0.05}
    for run in learning_rates:
        shutil.copytree(root / "train" / "default" / "eval", tmp_path / run / "eval")
    written = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import tensorflow as tf
        from app import config
        from app.tensorboard import hparams
        for run, learning_rate in {learning_rates!r}.items():
            settings = config.load(None, [f"tutorial.initial_learning_rate={{learning_rate}}"], {{}})
            writer = tf.summary.create_file_writer(f"{tmp_path}/{{run}}")
            with writer.as_default():
                hparams.write_hparams(settings, step=0)
            writer.close()
        """)], cwd=REPO_ROOT, env=app_environment(), capture_output=True, text=True, timeout=300)
    assert written.returncode == 0, written.stderr

    routes = plugin_routes(hparams_plugin.HParamsPlugin, tmp_path)
    groups = routes["/session_groups"].post("/session_groups", json={
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"],
        "startIndex": 0, "sliceSize": 10}).json["sessionGroups"]
    final_precision = results(root)[-1]["precision_at_1"]
    rows = {}
    for group in groups:
        [session] = group["sessions"]
        metrics = {metric["name"]["tag"]: metric["value"] for metric in group["metricValues"]}
        rows[session["name"]] = (group["hparams"]["tutorial.initial_learning_rate"],
                                 pytest.approx(metrics["precision @ 1"], abs=1e-6))
    assert rows == {run: (learning_rate, final_precision)
                    for run, learning_rate in learning_rates.items()}


def test_the_export_classifies_in_a_process_of_its_own(evaluated, tmp_path):
    """Loaded with plain TensorFlow, without this package on the path, the exported model
    classifies the test images as eval counted for its step: far above chance (0.1)."""
    root, _ = evaluated
    history = results(root)
    best = max(history, key=lambda result: (result["precision_at_1"], -result["loss"]))
    export = exports.newest(root / "train" / "default")
    exported = exports.evaluation_of(export)
    assert exported["step"] == best["step"] == int(export.name)
    assert exported["weights"] == "moving_averages"

    images, labels = read_test_set(root)
    np.save(tmp_path / "images.npy", images)
    environment = {name: value for name, value in app_environment().items()
                   if name != "PYTHONPATH"}
    classify = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(export)!r})
        outputs = model.signatures["classify_pixels"](
            images=tf.constant(np.load({str(tmp_path / "images.npy")!r})))
        print(json.dumps({{"class_ids": outputs["class_ids"].numpy().tolist(),
                          "names": [n.decode() for n in outputs["class_names"].numpy()],
                          "row_sums": outputs["probabilities"].numpy().sum(axis=1).tolist()}}))
        """)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert classify.returncode == 0, classify.stderr
    answer = json.loads(classify.stdout.strip().splitlines()[-1])
    accuracy = float(np.mean(np.array(answer["class_ids"]) == labels))
    assert accuracy == pytest.approx(exported["precision_at_1"], abs=1e-3)
    assert accuracy >= 0.3  # three times chance: 300 steps end anywhere from 0.5 to 0.99
    assert answer["names"] == [CLASS_NAMES[i] for i in answer["class_ids"]]
    assert np.allclose(answer["row_sums"], 1.0, atol=1e-4)


def test_report_prints_the_history_and_plots_it(evaluated):
    root, output = evaluated
    rows = re.findall(r"^ +(\d+) +(\d\.\d{3}) +(\d+\.\d{3}) +(\d\.\d{3})( \*)?$", output,
                      re.MULTILINE)
    history = results(root)
    assert [int(step) for step, *_ in rows] == EVALUATED_STEPS
    best_so_far = 0.0
    for (step, precision, loss, best, star), result in zip(rows, history):
        assert float(precision) == pytest.approx(result["precision_at_1"], abs=5e-4)
        assert float(loss) == pytest.approx(result["loss"], abs=5e-4)
        best_so_far = max(best_so_far, result["precision_at_1"])
        assert float(best) == pytest.approx(best_so_far, abs=5e-4)
    assert "exported: step" in output
    plot = root / "train" / "default" / "eval" / "precision_at_1.png"
    with Image.open(plot) as picture:
        assert picture.format == "PNG" and picture.size == (800, 450)


def test_the_volumes_report_has_the_runs_row(evaluated):
    root, _ = evaluated
    volume = run_app("report", *settings(root, RUN))
    assert volume.returncode == ExitCode.DONE, volume.stdout + volume.stderr
    best = max(results(root), key=lambda result: (result["precision_at_1"], -result["loss"]))
    [row] = [line.split() for line in volume.stdout.splitlines() if line.startswith("default ")]
    assert row[:5] == ["default", "tutorial", f"{MAX_STEPS}/{MAX_STEPS}",
                       f"{best['precision_at_1']:.3f}", str(best["step"])]
    assert float(row[5]) > 0  # the trainer's latest images per second
    assert (root / "train" / "precision_at_1.png").is_file()
