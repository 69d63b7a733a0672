"""Exponential moving averages of the weights, as the tutorial kept them for evaluation.

The averages live in the checkpoint beside the raw weights. Early in training the decay is
min(decay, (1 + step) / (10 + step)), the tutorial's num_updates rule, so that an average taken
after a few hundred steps is not still mostly the random initialization.
"""
from __future__ import annotations

import tensorflow as tf


class MovingAverages(tf.Module):
    def __init__(self, variables, decay: float):
        super().__init__(name="moving_averages")
        self.decay = decay
        self._variables = list(variables)
        # One shadow per variable, in the model's own order (the checkpoint keys them so).
        self.averages = [tf.Variable(tf.convert_to_tensor(variable), trainable=False)
                         for variable in self._variables]

    def update(self, step) -> None:
        step = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))
        for average, variable in zip(self.averages, self._variables):
            average.assign_sub((1.0 - decay) * (average - tf.convert_to_tensor(variable)))

    def copy_to_variables(self) -> None:
        """Puts the averages into the model's variables (eval and export use them so)."""
        for average, variable in zip(self.averages, self._variables):
            variable.assign(average)
