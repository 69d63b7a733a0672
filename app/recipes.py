"""Training recipes: what differs between the tutorial's way to train and the fast one.

A recipe chooses the network, what it sees (augmentation, input size, test-time flips), the loss,
the learning-rate schedule and the optimizer. The trainer and eval stay the same for every recipe.

    tutorial (train.model: cnn)  the classic TensorFlow CIFAR-10 tutorial: 24x24 crops with
        colour jitter, cross entropy plus L2 weight decay on local3/local4, plain SGD at 0.1,
        divided by 10 every 350 epochs (staircase)
    fast (train.model: resnet)   after "How to train your ResNet" (Page) and airbench (Jordan):
        ResNet-9 with batch norm on whole 32x32 images with flips and 4-pixel shifts, label
        smoothing 0.2, Nesterov SGD with decoupled weight decay, a one-cycle schedule (linear
        warm-up to the peak, linear decay to zero at max_steps), and flipped copies at eval
"""
from __future__ import annotations

import keras
import tensorflow as tf

from app import data, model as models


class TutorialRecipe:
    input_size = data.CROP_SIZE
    test_time_flips = False
    bfloat16_is_safe = False  # see devices.mixed_precision_policy

    def __init__(self, config):
        self.train = config.train

    def build_model(self) -> keras.Model:
        return models.build("cnn")

    @staticmethod
    def augment(images):
        return data.augment_batch(images)

    def learning_rate(self, steps_per_epoch: float, scale: float):
        return keras.optimizers.schedules.ExponentialDecay(
            self.train.initial_learning_rate * scale,
            decay_steps=max(1, int(steps_per_epoch * self.train.epochs_per_decay)),
            decay_rate=self.train.learning_rate_decay_factor, staircase=True)

    def optimizer(self, learning_rate) -> keras.optimizers.Optimizer:
        return keras.optimizers.SGD(learning_rate)

    def per_example_loss(self, labels, logits):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    def regularization_losses(self, model) -> dict[str, tf.Tensor]:
        return models.weight_decay_losses(model, self.train.weight_decay)


class FastRecipe:
    input_size = data.IMAGE_SIZE
    test_time_flips = True
    bfloat16_is_safe = True

    def __init__(self, config):
        self.train = config.train
        self.resnet = config.resnet

    def build_model(self) -> keras.Model:
        return models.build("resnet", width=self.resnet.width)

    @staticmethod
    def augment(images):
        return data.flip_and_translate(images)

    def learning_rate(self, steps_per_epoch: float, scale: float):
        return OneCycle(self.resnet.peak_learning_rate * scale, self.train.max_steps,
                        self.resnet.warmup_fraction)

    def optimizer(self, learning_rate) -> keras.optimizers.Optimizer:
        return keras.optimizers.SGD(learning_rate, momentum=self.resnet.momentum, nesterov=True,
                                    weight_decay=self.resnet.weight_decay)

    def per_example_loss(self, labels, logits):
        smoothing = self.resnet.label_smoothing
        targets = tf.one_hot(labels, data.NUM_CLASSES) * (1 - smoothing) + smoothing / data.NUM_CLASSES
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)

    def regularization_losses(self, model) -> dict[str, tf.Tensor]:
        return {}  # the weight decay is the optimizer's, decoupled from the loss


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


RECIPES = {"cnn": TutorialRecipe, "resnet": FastRecipe}


def for_config(config):
    return RECIPES[config.train.model](config)
