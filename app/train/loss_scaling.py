"""float16's dynamic loss scaling, around the recipe's optimizer (train.mixed_precision: float16,
or auto on Volta and Turing GPUs).

float16 underflows below 6e-8: many of a network's gradients are smaller. So the loss is
multiplied by the loss scale before the gradients are taken, and they are divided by it before
the update: keras.mixed_precision.LossScaleOptimizer, dynamic. A step whose gradients overflowed
(inf or NaN) is skipped, nothing applied, and the scale halved; after GROWTH_STEPS good steps in a
row it doubles. A skipped step is normal, not a divergence: the loss itself is finite, and the
trainer's check on it (total_loss) still stops a run whose loss is not.

A skipped step leaves the optimizer's iteration counter where it was: the global step counts the
updates applied, so max_steps, the schedule and the checkpoints' names keep their meaning, and a
run takes a few more batches than steps.

The scale and its count of good steps are saved in each checkpoint (`loss_scale`), apart from the
optimizer, so that checkpoints of float32 and float16 runs restore into each other: a run resumed on
another GPU may be given another precision by `auto`.

Under a distribution strategy Keras (3.15) decides to skip from the first replica's gradients
before they are all-reduced; the replicas here agree first, so that an overflow on any replica
skips the step on every one: seen otherwise (Keras alone, two replicas, the second's gradients
overflowing) to apply an infinite gradient; and on a job of several workers, a worker applying
(an all-reduce) while another skips would wait for it forever.
"""
from __future__ import annotations

import keras
import tensorflow as tf

# Keras' defaults, which are TensorFlow 2's: a high start, lowered within a few steps.
INITIAL_SCALE = 2.0 ** 15
GROWTH_STEPS = 2000
# A scale below 1 means the gradients overflow float16 unscaled: the run has diverged.
SMALLEST_SCALE = 1.0
CHECKPOINT_KEY = "loss_scale"


class LossScaling:
    """The recipe's optimizer wrapped in a dynamic LossScaleOptimizer; built on `variables`."""

    def __init__(self, optimizer: keras.optimizers.Optimizer, variables):
        self.optimizer = keras.mixed_precision.LossScaleOptimizer(
            optimizer, initial_scale=INITIAL_SCALE, dynamic_growth_steps=GROWTH_STEPS)
        self.optimizer.build(variables)
        self.scale = self.optimizer.dynamic_scale
        self.good_steps = self.optimizer.step_counter  # since the scale last changed
        self.checkpointed = tf.train.Checkpoint(scale=self.scale, good_steps=self.good_steps)

    def scale_loss(self, loss: tf.Tensor) -> tf.Tensor:
        return self.optimizer.scale_loss(loss)

    def unscaled(self, gradients) -> list:
        """The gradients of the loss itself (the summaries show these)."""
        return [gradient / tf.cast(self.scale, gradient.dtype) for gradient in gradients]

    def apply(self, gradients, variables) -> None:
        """Unscales and applies this replica's gradients, or skips the step on every replica
        when any replica's overflowed."""
        gradients = list(gradients)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            overflowed = 1.0 - tf.cast(self.optimizer.check_finite(gradients), tf.float32)
            anywhere = context.all_reduce(tf.distribute.ReduceOp.SUM, overflowed)
            # Keras looks at the first replica's gradients: one NaN there skips the step.
            poison = tf.where(anywhere > 0, float("nan"), 1.0)
            gradients[0] = gradients[0] * tf.cast(poison, gradients[0].dtype)
        self.optimizer.apply_gradients(zip(gradients, variables))

    def restore(self, checkpoint_path: str) -> bool:
        """Takes the scale from this checkpoint; False if it has none (saved without loss
        scaling: the scale starts at INITIAL_SCALE)."""
        names = {name for name, _ in tf.train.list_variables(checkpoint_path)}
        if not any(name.startswith(f"{CHECKPOINT_KEY}/") for name in names):
            return False
        tf.train.Checkpoint(**{CHECKPOINT_KEY: self.checkpointed}).read(
            checkpoint_path).assert_existing_objects_matched().expect_partial()  # the rest
        return True

    def describe(self) -> str:
        return f"loss scale {self.scale.numpy():g}"

    def too_small(self) -> bool:
        return float(self.scale.numpy()) < SMALLEST_SCALE
