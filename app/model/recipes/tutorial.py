"""The classic TensorFlow CIFAR-10 tutorial's recipe (cifar10.py / cifar10_input.py), layer for
layer, in Keras 3.

It trains on random 24x24 crops of the 32x32 images, flipped left-right at random, with their
brightness and contrast jittered, each standardized; eval sees the central 24x24 crop. The network
(1,068,298 parameters) is two 5x5 convolutions of 64 channels, each with max pooling and local
response normalization, two fully connected layers with weight decay, and a linear layer of class
scores. The loss is the softmax cross entropy plus the weight decay; the optimizer plain SGD whose
rate drops by a constant factor every so many epochs.

Its tunable hyperparameters are the `tutorial:` section of the configuration (app/config/defaults.yaml,
with their reasons); what the tutorial fixed is fixed here, with its reason.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from app.data import cifar10, pipeline
from app.model.recipes.recipe import Recipe, model_outputs

# The tutorial's crop: smaller than the image, so that a random crop is an augmentation.
CROP_SIZE = 24
# The tutorial's distortions: brightness shifted by up to 63 of 255, contrast scaled by 0.2-1.8.
MAX_BRIGHTNESS_DELTA = 63.0
CONTRAST_RANGE = (0.2, 1.8)
# Its local response normalization (tf.nn.local_response_normalization's depth_radius, bias,
# alpha and beta), as AlexNet used it.
LRN_DEPTH_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA = 4, 1.0, 0.001 / 9.0, 0.75
# The layers whose kernels carry the L2 weight decay (the tutorial's wd on local3 and local4 only).
DECAYED_LAYERS = ("local3", "local4")


class TutorialRecipe(Recipe):
    input_size = CROP_SIZE
    test_time_flips = False
    # At its learning rate of 0.1 it was seen to diverge in bfloat16 (app/runtime/devices.py).
    bfloat16_is_safe = False
    # Nothing normalizes its activations (LRN only rescales them), and no run of it in float16 has
    # been seen to train as in float32: it stays in float32 unless asked (train.mixed_precision).
    float16_is_safe = False
    embedding_layer = "local4"  # the 192 features before the class scores
    # In the input pipeline, as in the tutorial: estimated at ~8 host cores at an H100's pace
    # (bench/RESULTS.md), and on a CPU the pipeline's threads overlap with the step.
    augments_in_step = False
    # Its rate drops every epochs_per_decay epochs, whatever train.max_steps is.
    schedule_spans_run = False

    def __init__(self, config):
        super().__init__(config)
        self.hyperparameters = config.tutorial

    def build_model(self) -> keras.Model:
        return tutorial_cnn()

    def augment(self, images, seed):
        return distort(images, seed)

    def learning_rate(self, steps_per_epoch: float, scale: float):
        tutorial = self.hyperparameters
        return keras.optimizers.schedules.ExponentialDecay(
            tutorial.initial_learning_rate * scale,
            decay_steps=max(1, int(steps_per_epoch * tutorial.epochs_per_decay)),
            decay_rate=tutorial.learning_rate_decay_factor, staircase=True)

    def optimizer(self, learning_rate) -> keras.optimizers.Optimizer:
        clip = self.hyperparameters.gradient_clip_norm
        if clip is None:
            return keras.optimizers.SGD(learning_rate)
        # Keras clips each replica's share of the gradients before they are summed: shares of
        # at most clip / replicas keep the sum within clip, and on one replica it is exact.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return keras.optimizers.SGD(learning_rate, global_clipnorm=clip / replicas)

    def per_example_loss(self, labels, logits):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    def regularization_losses(self, model) -> dict[str, tf.Tensor]:
        return weight_decay_losses(model, self.hyperparameters.weight_decay)


# -- what the network sees --------------------------------------------------------------------

def distort(images, seed):
    """The tutorial's distortions, drawn per image but computed for the whole batch at once: a
    random crop, a random left-right flip, brightness and contrast jitter, then per-image
    standardization. Their randomness is a pure function of `seed` (a stateless seed: the
    pipeline's augmentation_seed)."""
    crop, flip, brightness, contrast = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    images = pipeline.random_flips(pipeline.random_crops(images, CROP_SIZE, crop), flip)
    images = tf.cast(images, tf.float32)
    batch = tf.shape(images)[0]
    images += tf.random.stateless_uniform([batch, 1, 1, 1], brightness,
                                          -MAX_BRIGHTNESS_DELTA, MAX_BRIGHTNESS_DELTA)
    factor = tf.random.stateless_uniform([batch, 1, 1, 1], contrast, *CONTRAST_RANGE)
    channel_means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    images = (images - channel_means) * factor + channel_means
    return tf.image.per_image_standardization(images)


# -- the network ------------------------------------------------------------------------------

def tutorial_cnn() -> keras.Model:
    """The tutorial's layers, names and initializers (a truncated normal per layer)."""
    images = keras.Input((CROP_SIZE, CROP_SIZE, cifar10.CHANNELS), name="images")
    conv1 = _conv(0.0, "conv1")(images)
    pool1 = keras.layers.MaxPool2D(3, 2, padding="same", name="pool1")(conv1)
    norm1 = keras.layers.Lambda(local_response_normalization, name="norm1")(pool1)
    conv2 = _conv(0.1, "conv2")(norm1)
    norm2 = keras.layers.Lambda(local_response_normalization, name="norm2")(conv2)
    pool2 = keras.layers.MaxPool2D(3, 2, padding="same", name="pool2")(norm2)
    flat = keras.layers.Flatten(name="flatten")(pool2)
    local3 = _dense(384, 0.04, 0.1, "local3")(flat)
    local4 = _dense(192, 0.04, 0.1, "local4")(local3)
    # Linear: the softmax lives in the loss, which is numerically kinder.
    logits = _dense(cifar10.NUM_CLASSES, 1 / 192.0, 0.0, "softmax_linear", activation=None)(local4)
    layers = {"conv1": conv1, "conv2": conv2, "local3": local3, "local4": local4,
              "softmax_linear": logits}
    return keras.Model(images, model_outputs(layers, logits="softmax_linear",
                                             embedding=TutorialRecipe.embedding_layer),
                       name="cifar10_cnn")


def _conv(bias: float, name: str):
    return keras.layers.Conv2D(
        64, 5, padding="same", activation="relu", name=name,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=5e-2),
        bias_initializer=keras.initializers.Constant(bias))


def _dense(units: int, stddev: float, bias: float, name: str, activation="relu"):
    return keras.layers.Dense(
        units, activation=activation, name=name,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=stddev),
        bias_initializer=keras.initializers.Constant(bias))


def local_response_normalization(x):
    """tf.nn.local_response_normalization's formula, computed another way (Keras 3 has no LRN
    layer): the sum of squares over the 2r+1 neighbouring channels is a matmul with a 0/1 band
    matrix, and the power is exp(-beta * log(.)) (tf.pow's kernel is slow). TensorFlow's own LRN
    kernels exist for float32 only (no bfloat16, on the CPU or the GPU), and its CPU gradient is a
    scalar loop that took a quarter of a training step; this one makes the whole step 1.2x faster
    in float32 and agrees with it to 2e-7 (bench/lrn.py)."""
    channels = x.shape[-1]
    index = tf.range(channels)
    band = tf.cast(tf.abs(index[:, None] - index[None, :]) <= LRN_DEPTH_RADIUS, x.dtype)
    window_sums = tf.reshape(tf.matmul(tf.reshape(tf.square(x), [-1, channels]), band),
                             tf.shape(x))
    return x * tf.exp(-LRN_BETA * tf.math.log(LRN_BIAS + LRN_ALPHA * window_sums))


# -- the loss ---------------------------------------------------------------------------------

def weight_decay_losses(model: keras.Model, weight_decay: float) -> dict[str, tf.Tensor]:
    """The tutorial's weight_loss terms: weight_decay * sum(w**2) / 2 per decayed kernel."""
    return {f"{name}/weight_loss": weight_decay * tf.nn.l2_loss(
                tf.cast(model.get_layer(name).kernel, tf.float32))
            for name in DECAYED_LAYERS}
