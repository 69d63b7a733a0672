"""The Projector's files: sprite layout, metadata, config, what is kept and what is forgotten."""
import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins.projector import ProjectorConfig

from app.eval import run_evaluator
from app.tensorboard import projector
from app.data.cifar10 import CLASS_NAMES
from app.volume import layout


def sample(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count)
    return images, labels


def write(eval_dir, step, images, labels, embedding_size=192):
    embeddings = np.random.default_rng(step).normal(size=(len(images), embedding_size))
    predictions = labels.copy()
    predictions[::4] = (labels[::4] + 1) % 10  # every fourth one wrong
    return projector.write(eval_dir, step, "local4", images, labels, embeddings, predictions,
                           CLASS_NAMES)


def read_config(eval_dir) -> ProjectorConfig:
    return text_format.Parse((eval_dir / layout.PROJECTOR_CONFIG_FILE).read_text(),
                             ProjectorConfig())


def test_sprite_lays_images_out_row_by_row_in_a_square():
    images, _ = sample(10)  # a 4x4 grid: 10 images, then 6 black cells
    grid = projector.sprite_grid(images)
    assert grid.shape == (128, 128, 3)
    for index in range(10):
        row, column = divmod(index, 4)
        assert (grid[32 * row:32 * row + 32, 32 * column:32 * column + 32] == images[index]).all()
    assert not grid[64:, 64:].any()


def test_metadata_has_a_header_and_one_row_per_image_in_sprite_order():
    table = projector.metadata_table(np.array([3, 5]), np.array([3, 1]), CLASS_NAMES)
    assert table.splitlines() == ["index\tclass\tpredicted\tcorrect",
                                  "0\tcat\tcat\tyes",
                                  "1\tdog\tautomobile\tno"]


def test_write_points_the_projector_at_tensor_metadata_and_sprite(tmp_path):
    images, labels = sample(50)
    write(tmp_path, 300, images, labels)
    [embedding] = read_config(tmp_path).embeddings
    assert embedding.tensor_name == "local4 @ step 300"
    tensor = np.loadtxt(tmp_path / embedding.tensor_path, delimiter="\t")
    assert tensor.shape == (50, 192)
    metadata = (tmp_path / embedding.metadata_path).read_text().splitlines()
    assert len(metadata) == 51 and metadata[0].startswith("index\tclass")
    assert [line.split("\t")[1] for line in metadata[1:]] == [CLASS_NAMES[i] for i in labels]
    sprite = Image.open(tmp_path / embedding.sprite.image_path)
    assert sprite.size == (8 * 32, 8 * 32)  # 50 images need an 8x8 grid
    assert list(embedding.sprite.single_image_dim) == [32, 32]


def test_the_newest_steps_are_kept_newest_first_and_older_files_removed(tmp_path):
    images, labels = sample(20)
    for step in (100, 700, 200, 300, 600, 400, 500):  # eval may go back to older checkpoints
        write(tmp_path, step, images, labels)
    names = [embedding.tensor_name for embedding in read_config(tmp_path).embeddings]
    assert names == [f"local4 @ step {step}" for step in (700, 600, 500, 400, 300)]
    files = sorted(path.name for path in (tmp_path / layout.PROJECTOR_FOLDER).iterdir())
    assert [name for name in files if name.endswith(".tsv")] == sorted(
        [f"local4-step-{step}.tsv" for step in (300, 400, 500, 600, 700)]
        + [f"metadata-step-{step}.tsv" for step in (300, 400, 500, 600, 700)])
    assert "sprite-20.png" in files and not any(name.startswith(".") for name in files)


def test_a_changed_sample_size_gets_its_own_sprite(tmp_path):
    write(tmp_path, 100, *sample(20))
    write(tmp_path, 200, *sample(30))
    sprites = {embedding.tensor_name: embedding.sprite.image_path
               for embedding in read_config(tmp_path).embeddings}
    assert sprites == {"local4 @ step 200": "projector/sprite-30.png",
                       "local4 @ step 100": "projector/sprite-20.png"}


def test_each_write_renames_the_marker_checkpoint_so_tensorboard_rereads(tmp_path):
    images, labels = sample(5)
    write(tmp_path, 100, images, labels)
    assert 'model_checkpoint_path: "projector/written_at_step-100"' in (
        tmp_path / "checkpoint").read_text()
    write(tmp_path, 200, images, labels)
    assert 'model_checkpoint_path: "projector/written_at_step-200"' in (
        tmp_path / "checkpoint").read_text()
    assert not list((tmp_path / layout.PROJECTOR_FOLDER).glob("written_at_step-100*"))


def test_the_fast_recipes_wider_embedding_is_written_under_its_layers_name(tmp_path):
    images, labels = sample(3)
    embeddings = np.random.default_rng(1).normal(size=(3, 512))
    projector.write(tmp_path, 1, "features", images, labels, embeddings, labels, CLASS_NAMES)
    assert np.loadtxt(tmp_path / "projector" / "features-step-1.tsv").shape == (3, 512)
    [embedding] = read_config(tmp_path).embeddings
    assert embedding.tensor_name == "features @ step 1"


@pytest.mark.parametrize("every_evals, projected", [
    (1, [100, 200, 300, 400, 500]),
    (2, [100, 300, 500]),
    (3, [100, 400, 500]),  # the one at max_steps too
])
def test_the_projector_is_written_every_nth_evaluation_and_at_max_steps(every_evals, projected):
    steps = [100, 200, 300, 400, 500]
    assert [step for before, step in enumerate(steps)
            if run_evaluator.projector_due(before, every_evals, step, max_steps=500)] == projected
