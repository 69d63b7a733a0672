"""The fast recipe: ResNet-9 as the fastest known CIFAR-10 trainings train it, after David Page's
"How to train your ResNet" (94% in 79 s on one V100) and Keller Jordan's airbench, its descendant.

It trains on whole 32x32 images, flipped at random and shifted by up to 4 pixels (the image
mirrored into the border), each standardized; eval sees each test image and its mirror image and
averages the two. The network (6.58M parameters at width 64) is conv-batchnorm-relu blocks with
max pooling, two residual blocks, a global max pool and a linear classifier whose scores are scaled
down by 8. The loss is the cross entropy against label-smoothed targets; the optimizer Nesterov
SGD with decoupled weight decay on a one-cycle schedule, which needs to know where the run ends
(train.max_steps). Their 94% runs took about 10 epochs at batch 512: what train.max_steps and
train.batch_size `auto` come to (app/config/schema.py).

Its tunable hyperparameters are the `fast:` section of the configuration (app/config/defaults.yaml, with
their reasons); what Page and airbench fixed is fixed here, with its reason.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from app.data import cifar10, pipeline
from app.model.recipes.recipe import Recipe, model_outputs

# The largest shift of the translation augmentation, in pixels (Page's 4-pixel crop of a
# reflection-padded image).
MAX_SHIFT = 4
# Page's batch-norm momentum: lighter than Keras' 0.99, which suits a 10-epoch run.
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5
# Page scales the logits by 1/8: a cooler softmax early on, which trains faster.
LOGIT_SCALE = 0.125


class FastRecipe(Recipe):
    input_size = cifar10.IMAGE_SIZE
    test_time_flips = True
    bfloat16_is_safe = True  # batch norm keeps it stable in bfloat16
    # Batch norm also keeps every activation near unit scale, far inside float16's range (65,504);
    # the gradients' small values are what loss scaling lifts above float16's underflow. Page
    # trained this network in half precision on his V100.
    float16_is_safe = True
    embedding_layer = "features"  # the global max pool of the last stage
    # At an H100's estimated pace (bench/RESULTS.md) its flips and shifts alone would keep ~9 host
    # cores busy; on the GPU they are a few batch-wide ops on a 512-image batch, as in airbench.
    augments_in_step = True
    # The one-cycle schedule rises and falls over train.max_steps (OneCycle below).
    schedule_spans_run = True

    def __init__(self, config):
        super().__init__(config)
        self.hyperparameters = config.fast
        self.max_steps = config.train.max_steps

    def build_model(self) -> keras.Model:
        return resnet9(self.hyperparameters.width)

    def augment(self, images, seed):
        return flip_and_translate(images, seed)

    def learning_rate(self, steps_per_epoch: float, scale: float):
        fast = self.hyperparameters
        return OneCycle(fast.peak_learning_rate * scale, self.max_steps, fast.warmup_fraction)

    def optimizer(self, learning_rate) -> keras.optimizers.Optimizer:
        fast = self.hyperparameters
        return keras.optimizers.SGD(learning_rate, momentum=fast.momentum, nesterov=True,
                                    weight_decay=fast.weight_decay)

    def per_example_loss(self, labels, logits):
        smoothing = self.hyperparameters.label_smoothing
        targets = (tf.one_hot(labels, cifar10.NUM_CLASSES) * (1 - smoothing)
                   + smoothing / cifar10.NUM_CLASSES)
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)

    def regularization_losses(self, model) -> dict[str, tf.Tensor]:
        return {}  # the weight decay is the optimizer's, decoupled from the loss


# -- what the network sees --------------------------------------------------------------------

def flip_and_translate(images, seed):
    """A random flip and a shift of up to MAX_SHIFT pixels (the image mirrored into the border),
    keeping the whole image; then per-image standardization. Their randomness is a pure function
    of `seed` (a stateless seed: the pipeline's augmentation_seed)."""
    shift, flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    margin = [[0, 0], [MAX_SHIFT, MAX_SHIFT], [MAX_SHIFT, MAX_SHIFT], [0, 0]]
    padded = tf.pad(images, margin, mode="REFLECT")
    images = pipeline.random_flips(pipeline.random_crops(padded, cifar10.IMAGE_SIZE, shift), flip)
    return tf.image.per_image_standardization(tf.cast(images, tf.float32))


# -- the network ------------------------------------------------------------------------------

def resnet9(width: int = 64) -> keras.Model:
    """ResNet-9: width channels in the stem, doubling at each of the three stages. The summaries
    show each stage's output under the stage's name."""
    images = keras.Input((cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, cifar10.CHANNELS), name="images")
    prep = _conv_bn(images, width, "prep")
    layer1 = keras.layers.MaxPool2D(2, name="layer1_pool")(
        _conv_bn(prep, 2 * width, "layer1_block"))
    residual1 = _conv_bn(_conv_bn(layer1, 2 * width, "layer1_res1"), 2 * width, "layer1_res2")
    layer1 = keras.layers.Add(name="layer1")([layer1, residual1])
    layer2 = keras.layers.MaxPool2D(2, name="layer2")(_conv_bn(layer1, 4 * width, "layer2_block"))
    layer3 = keras.layers.MaxPool2D(2, name="layer3_pool")(
        _conv_bn(layer2, 8 * width, "layer3_block"))
    residual3 = _conv_bn(_conv_bn(layer3, 8 * width, "layer3_res1"), 8 * width, "layer3_res2")
    layer3 = keras.layers.Add(name="layer3")([layer3, residual3])
    features = keras.layers.GlobalMaxPool2D(name="features")(layer3)
    scores = keras.layers.Dense(cifar10.NUM_CLASSES, use_bias=False, name="classifier")(features)
    logits = keras.layers.Rescaling(LOGIT_SCALE, name="logits")(scores)
    layers = {"prep": prep, "layer1": layer1, "layer2": layer2, "layer3": layer3,
              "features": features, "logits": logits}
    return keras.Model(images, model_outputs(layers, logits="logits",
                                             embedding=FastRecipe.embedding_layer),
                       name="resnet9")


def _conv_bn(x, channels: int, name: str):
    x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON,
                                        name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=name)(x)


# -- the schedule -----------------------------------------------------------------------------

class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear from 0 to peak over the first warmup_fraction of the run, then linear to 0."""

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float):
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_steps = max(1.0, warmup_fraction * total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rising = step / self.warmup_steps
        falling = (self.total_steps - step) / max(1.0, self.total_steps - self.warmup_steps)
        return self.peak * tf.clip_by_value(tf.minimum(rising, falling), 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_fraction": self.warmup_steps / self.total_steps}
