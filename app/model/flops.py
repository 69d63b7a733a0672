"""What a network costs to train, counted from its layers: the yardstick the benchmarks measure
speed against (a machine's FLOP/s divided by this gives its best possible images per second)."""
from __future__ import annotations

import keras


def training_flops_per_image(model: keras.Model) -> int:
    """Floating-point operations to train on one image: 2 per multiply-add forward, and twice
    the forward pass again for the backward pass (gradients for inputs and for weights).
    Convolutions and dense layers only: the rest is a few percent."""
    multiply_adds = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width, channels_out = layer.output.shape[1:]
            kernel_h, kernel_w, channels_in, _ = layer.kernel.shape
            multiply_adds += height * width * channels_out * kernel_h * kernel_w * channels_in
        elif isinstance(layer, keras.layers.Dense):
            multiply_adds += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3 * 2 * multiply_adds
