"""The network of a run as eval measures it, built once and given the weights of its checkpoints.

The run's configuration (app/config's config_of_run: the train and recipe sections its trainer
started with) chooses the recipe, and so the network, its input size and its test-time flips.
Reading a checkpoint puts its moving averages of the weights into the network (or its raw
weights, with eval.use_moving_averages false), which is what eval measures, what the export serves
and what `predict` classifies with before a run has an export.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from app.model import recipes
from app.model.averages import MovingAverages
from app.model.serving import Classifier


class EvaluationModel:
    def __init__(self, run_config):
        """`run_config` is the run's: with the train and recipe sections its trainer started
        with."""
        recipe = recipes.for_config(run_config)
        self.network = recipe.build_model()  # the Keras model: logits, every layer, the embedding
        self.input_size = recipe.input_size
        self.embedding_layer = recipe.embedding_layer
        self.classifier = Classifier(recipes.logits_model(self.network), recipe.input_size,
                                     recipe.test_time_flips)
        self.use_moving_averages = run_config.eval.use_moving_averages
        # Decay 0: the averages are only read here, never updated.
        self._averages = MovingAverages(self.network.trainable_variables, decay=0.0)
        self._step = tf.Variable(0, dtype=tf.int64)
        self._checkpoint = tf.train.Checkpoint(step=self._step, model=self.network,
                                               averages=self._averages)

    @property
    def weights(self) -> str:
        """Which of a checkpoint's weights the network holds once it is read."""
        return "moving_averages" if self.use_moving_averages else "raw"

    def read(self, checkpoint: Path) -> int:
        """Gives the network the checkpoint's weights; returns its global step. Raises a
        tf.errors.OpError (NotFoundError) when the checkpoint was rotated away before or while
        it was read: the trainer keeps only its newest few."""
        self._checkpoint.read(str(checkpoint)).expect_partial()
        if self.use_moving_averages:
            self._averages.copy_to_variables()
        return int(self._step.numpy())
