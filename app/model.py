"""The networks.

`tutorial_cnn` is the classic TensorFlow CIFAR-10 model, layer for layer and with the tutorial's
initializers: two 5x5 convolutions with max pooling and local response normalization, two fully
connected layers with weight decay, and a linear softmax layer (1,068,298 parameters). It sees
24x24 crops.

`resnet9` is the residual network of the fast CIFAR-10 recipes (David Page's "How to train your
ResNet", the ancestor of Keller Jordan's airbench): conv-batchnorm-relu blocks, max pooling, two
residual blocks, a global max pool and a scaled linear classifier. It sees the whole 32x32 image.

A model here is a Keras model whose output is a dict: every named layer's activations, the logits
under 'softmax_linear'. The trainer uses the activations for its summaries; `logits_model` gives the
plain images -> logits view that eval, export and Keras' own fit use.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from app.data import CHANNELS, CROP_SIZE, IMAGE_SIZE, NUM_CLASSES

# Layers whose activations the summaries show, in the order data flows through them.
ACTIVATION_LAYERS = ("conv1", "conv2", "local3", "local4", "softmax_linear")
# Layers whose kernels carry L2 weight decay (the tutorial's wd=0.004 on local3 and local4).
DECAYED_LAYERS = ("local3", "local4")


# The tutorial's local response normalization: depth_radius, bias, alpha, beta.
LRN_DEPTH_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA = 4, 1.0, 0.001 / 9.0, 0.75


def _local_response_normalization(name: str) -> keras.layers.Layer:
    # Keras 3 has no LRN layer.
    return keras.layers.Lambda(local_response_normalization, name=name)


def local_response_normalization(x):
    """tf.nn.local_response_normalization's formula, computed another way: the sum of squares
    over the 2r+1 neighbouring channels is a matmul with a 0/1 band matrix, and the power is
    exp(-beta * log(.)) (tf.pow's kernel is slow). TensorFlow's own LRN kernels exist for
    float32 only (no bfloat16, on the CPU or the GPU), and its CPU gradient is a scalar loop that
    took a quarter of a training step; this one makes the whole step 1.2x faster in float32 and
    agrees with it to 2e-7 (bench/lrn.py)."""
    channels = x.shape[-1]
    index = tf.range(channels)
    band = tf.cast(tf.abs(index[:, None] - index[None, :]) <= LRN_DEPTH_RADIUS, x.dtype)
    window_sums = tf.reshape(tf.matmul(tf.reshape(tf.square(x), [-1, channels]), band),
                             tf.shape(x))
    return x * tf.exp(-LRN_BETA * tf.math.log(LRN_BIAS + LRN_ALPHA * window_sums))


def _dense(units: int, stddev: float, bias: float, name: str, activation="relu"):
    return keras.layers.Dense(
        units, activation=activation, name=name,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=stddev),
        bias_initializer=keras.initializers.Constant(bias))


def _conv(bias: float, name: str):
    return keras.layers.Conv2D(
        64, 5, padding="same", activation="relu", name=name,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=5e-2),
        bias_initializer=keras.initializers.Constant(bias))


def tutorial_cnn() -> keras.Model:
    images = keras.Input((CROP_SIZE, CROP_SIZE, CHANNELS), name="images")
    conv1 = _conv(0.0, "conv1")(images)
    pool1 = keras.layers.MaxPool2D(3, 2, padding="same", name="pool1")(conv1)
    norm1 = _local_response_normalization("norm1")(pool1)
    conv2 = _conv(0.1, "conv2")(norm1)
    norm2 = _local_response_normalization("norm2")(conv2)
    pool2 = keras.layers.MaxPool2D(3, 2, padding="same", name="pool2")(norm2)
    flat = keras.layers.Flatten(name="flatten")(pool2)
    local3 = _dense(384, 0.04, 0.1, "local3")(flat)
    local4 = _dense(192, 0.04, 0.1, "local4")(local3)
    # Linear: the softmax lives in the loss, which is numerically kinder.
    logits = _dense(NUM_CLASSES, 1 / 192.0, 0.0, "softmax_linear", activation=None)(local4)
    return keras.Model(images, {"conv1": conv1, "conv2": conv2, "local3": local3,
                                "local4": local4, "softmax_linear": logits}, name="cifar10_cnn")


def _conv_bn(x, channels: int, name: str):
    x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # Page's recipe: a lighter batch-norm momentum than Keras' 0.99 suits a 10-epoch run.
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=name)(x)


def resnet9(width: int = 64) -> keras.Model:
    """ResNet-9: width channels in the stem, doubling at each of the three stages."""
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, CHANNELS), name="images")
    prep = _conv_bn(images, width, "prep")
    layer1 = keras.layers.MaxPool2D(2, name="pool1")(_conv_bn(prep, 2 * width, "layer1"))
    residual1 = _conv_bn(_conv_bn(layer1, 2 * width, "res1a"), 2 * width, "res1b")
    layer1 = keras.layers.Add(name="layer1_out")([layer1, residual1])
    layer2 = keras.layers.MaxPool2D(2, name="pool2")(_conv_bn(layer1, 4 * width, "layer2"))
    layer3 = keras.layers.MaxPool2D(2, name="pool3")(_conv_bn(layer2, 8 * width, "layer3"))
    residual3 = _conv_bn(_conv_bn(layer3, 8 * width, "res3a"), 8 * width, "res3b")
    layer3 = keras.layers.Add(name="layer3_out")([layer3, residual3])
    features = keras.layers.GlobalMaxPool2D(name="features")(layer3)
    dense = keras.layers.Dense(NUM_CLASSES, use_bias=False, name="classifier")(features)
    # Page scales the logits by 1/8: a cooler softmax early on, which trains faster.
    logits = keras.layers.Rescaling(0.125, name="softmax_linear")(dense)
    # Named like the tutorial's, so that the summaries and the projector treat both alike.
    return keras.Model(images, {"conv1": prep, "conv2": layer1, "local3": layer3,
                                "local4": features, "softmax_linear": logits}, name="resnet9")


MODELS = {"cnn": tutorial_cnn, "resnet": resnet9}


def build(name: str, **options) -> keras.Model:
    return MODELS[name](**options)


def logits_model(model: keras.Model) -> keras.Model:
    """The same layers and weights, images in and logits out."""
    return keras.Model(model.inputs, model.output["softmax_linear"], name=model.name + "_logits")


def weight_decay_losses(model: keras.Model, weight_decay: float) -> dict[str, tf.Tensor]:
    """The tutorial's weight_loss terms: weight_decay * sum(w**2) / 2 per decayed kernel."""
    return {f"{name}/weight_loss": weight_decay * tf.nn.l2_loss(
                tf.cast(model.get_layer(name).kernel, tf.float32))
            for name in DECAYED_LAYERS}


def training_flops_per_image(model: keras.Model) -> int:
    """Floating-point operations to train on one image: 2 per multiply-add forward, and twice
    the forward pass again for the backward pass (gradients for inputs and for weights)."""
    multiply_adds = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width, channels_out = layer.output.shape[1:]
            kernel_h, kernel_w, channels_in, _ = layer.kernel.shape
            multiply_adds += height * width * channels_out * kernel_h * kernel_w * channels_in
        elif isinstance(layer, keras.layers.Dense):
            multiply_adds += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3 * 2 * multiply_adds
