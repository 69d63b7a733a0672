"""The contract between a recipe and the programs that use it: the trainer and the evaluator use
of a recipe exactly what `Recipe` declares, and read a model's outputs by the roles named here.

Every recipe's model takes standardized images [batch, input_size, input_size, 3] and gives a
dict, keyed by role:

    logits      [batch, 10]   the unnormalized class scores (the softmax lives in the loss)
    embedding   [batch, n]    what the Projector places the test images by (`embedding_layer`)
    layers      {name: activations}  every layer the summaries show, under the layer's own name
"""
from __future__ import annotations

import abc

import keras
import tensorflow as tf

LOGITS, EMBEDDING, LAYERS = "logits", "embedding", "layers"


class Recipe(abc.ABC):
    """What the trainer and the evaluator use of a recipe."""

    # The side of the square the network sees: eval crops the test images' centre to it.
    input_size: int
    # Whether eval averages each test image's logits with its mirror image's.
    test_time_flips: bool
    # Whether train.mixed_precision: auto may compute in bfloat16, or in float16 with dynamic
    # loss scaling (app/runtime/devices.py): a recipe says so only with its reason.
    bfloat16_is_safe: bool
    float16_is_safe: bool
    # The layer whose activations are the model's `embedding`: the Projector's name for them.
    embedding_layer: str
    # Whether `augment` runs inside the training step, on the device that trains, rather than in
    # the input pipeline on the host's cores (which then only gathers uint8 batches). A recipe
    # says so where the pipeline alone would need more cores than a GPU machine has to keep
    # pace with a GPU (bench/pipeline_per_core.py).
    augments_in_step: bool
    # Whether the learning-rate schedule is fitted to train.max_steps (a one-cycle that ends at
    # it), so that another max_steps at a resume changes what is learned (app/train/starts.py).
    schedule_spans_run: bool

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """A fresh model whose outputs are keyed by role (see this module's docstring)."""

    @abc.abstractmethod
    def augment(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """A batch of uint8 training images [batch, 32, 32, 3] as the network trains on them;
        every random draw is a function of `seed`, a stateless seed ([2] integers), so that
        a batch's augmentation repeats (app/data/pipeline.py)."""

    def pipeline_augment(self):
        """What the input pipeline applies to each batch: `augment`, or nothing (the batch stays
        uint8) where the training step augments it."""
        return None if self.augments_in_step else self.augment

    @abc.abstractmethod
    def learning_rate(self, steps_per_epoch: float,
                      scale: float) -> keras.optimizers.schedules.LearningRateSchedule:
        """The schedule, by global step; `scale` multiplies its rates (linear scaling)."""

    @abc.abstractmethod
    def optimizer(self, learning_rate) -> keras.optimizers.Optimizer:
        ...

    @abc.abstractmethod
    def per_example_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """The loss of each image of a batch, float32 [batch]."""

    @abc.abstractmethod
    def regularization_losses(self, model: keras.Model) -> dict[str, tf.Tensor]:
        """Terms added to the loss, each summarized under its name (empty when there are none)."""


def model_outputs(layers: dict, logits: str, embedding: str) -> dict:
    """A model's outputs: every layer under its own name, and the two that have a role."""
    return {LOGITS: layers[logits], EMBEDDING: layers[embedding], LAYERS: layers}


def logits_model(model: keras.Model) -> keras.Model:
    """The same layers and weights, images in and logits out: what eval and the export run."""
    return keras.Model(model.inputs, model.output[LOGITS], name=model.name + "_logits")
