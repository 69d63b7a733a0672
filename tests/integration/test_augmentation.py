"""Where each recipe's augmentation runs: the fast recipe's inside the training step (on the device
that trains: at a GPU's pace the host would need ~9 cores for it, bench/RESULTS.md), the
tutorial's in the input pipeline, as in the tutorial. Seen by the graph each recipe's augment is
traced in, and by what the pipeline hands the step."""
import numpy as np
import pytest
import tensorflow as tf

from app import config as configuration
from app.model import recipes
from app.train.trainer import Trainer
from tests.harness.environment import settings

pytestmark = pytest.mark.slow

SMALL_RUN = {  # settings() adds its folders and the synthetic set
    "data.synthetic_train_examples": 64, "data.synthetic_test_examples": 16,
    "eval.num_examples": 16, "fast.width": 4, "train.batch_size": 8,
    # The trainer sets the process's dtype policy: float32 is the one the other tests expect.
    "train.mixed_precision": "float32",
}


def traced_in(recipe_name: str, root) -> tuple[list[str], tf.DType]:
    """The names of the graphs the recipe's augment was traced in for a training step, and the
    dtype of the images the pipeline gives the step."""
    config = configuration.load(overrides=settings(root, SMALL_RUN, **{
        "train.recipe": recipe_name})[1::2], environ={})
    graphs = []

    class Watched(recipes.RECIPES[recipe_name]):
        def augment(self, images, seed):
            graphs.append(tf.compat.v1.get_default_graph().name)
            return super().augment(images, seed)

    trainer = Trainer(config, recipe=Watched(config))
    images, labels = next(iter(trainer.dataset_from(0)))
    loss = trainer.train_step(images, labels, write_summaries=False)
    trainer.writer.close()
    assert np.isfinite(loss.numpy())
    return graphs, images.dtype


def test_the_fast_recipe_augments_in_the_training_step(tmp_path):
    graphs, pipeline_dtype = traced_in("fast", tmp_path)
    assert pipeline_dtype == tf.uint8  # the pipeline only gathers the stored images
    assert graphs and all("train_step" in graph for graph in graphs), graphs


def test_the_tutorial_recipe_augments_in_the_input_pipeline(tmp_path):
    graphs, pipeline_dtype = traced_in("tutorial", tmp_path)
    assert pipeline_dtype == tf.float32
    assert graphs and not any("train_step" in graph for graph in graphs), graphs
