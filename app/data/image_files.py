"""How an image file of any size and mode becomes a 32x32 RGB image like CIFAR-10's, in the same
steps twice: with Pillow for `python -m app predict`, and with TensorFlow inside the export's bytes
signature (what TensorFlow Serving runs).

    1. the first frame (GIF), as RGB: grey is repeated over the three channels, a palette looked
       up, and transparency laid over white (CIFAR-10 has no transparency; a transparent
       background is a white page to the people who made the picture);
    2. the largest centred square;
    3. scaled to 32x32 by averaging the pixels each output pixel covers (area / box
       resampling; bicubic for an image smaller than 32 pixels).

Why a centred square: CIFAR-10's images are square photographs in their natural proportions, the
object mostly filling the frame near its centre. Cutting a picture's longer side keeps proportions
(a car stays a car's shape) and keeps what the photographer centred; squashing the whole picture
into a square would stretch it in a way CIFAR-10's images never are, and letterboxing would add
bands of flat colour that the network would take for part of the scene. Averaging rather than
picking pixels, because that is what a camera's own downscaling does and it keeps fine textures
from turning into noise.
"""
from __future__ import annotations

import numpy as np

from app.data.cifar10 import CHANNELS, IMAGE_SIZE

WHITE = 255


# -- with Pillow (predict) ----------------------------------------------------------------------

def like_cifar10(image) -> np.ndarray:
    """A PIL image, any size and mode, as uint8 [32, 32, 3]."""
    from PIL import Image

    image.seek(0)  # the first frame of an animation
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grey
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" else max(float(values.max()), 1.0)
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8), "L")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    resampling = Image.Resampling.BOX if side >= IMAGE_SIZE else Image.Resampling.BICUBIC
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), resampling), dtype=np.uint8)


# -- with TensorFlow (the export's bytes signature) ---------------------------------------------

def decoded_like_cifar10(file_bytes):
    """One encoded image (a string tensor: PNG, JPEG, BMP or GIF) as uint8 [32, 32, 3]."""
    import tensorflow as tf

    # decode_image decodes JPEG with libjpeg's fast, approximate inverse DCT (up to 4 levels off
    # per pixel); Pillow, and so `predict`, with the accurate one. The same file must give the
    # same pixels, hence the JPEG branch of its own.
    image = tf.cond(
        tf.io.is_jpeg(file_bytes),
        lambda: tf.io.decode_jpeg(file_bytes, channels=0, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(file_bytes, channels=0, expand_animations=False))
    channels = tf.shape(image)[-1]
    pixels = tf.cast(image, tf.float32)
    has_alpha = tf.equal(channels % 2, 0)  # grey + alpha (2), or RGBA (4)
    colour = pixels[..., :channels - tf.cast(has_alpha, tf.int32)]
    colour = tf.cond(tf.shape(colour)[-1] == 1, lambda: tf.tile(colour, [1, 1, CHANNELS]),
                     lambda: colour)
    colour = tf.ensure_shape(colour, [None, None, CHANNELS])
    alpha = tf.cond(has_alpha, lambda: pixels[..., -1:] / 255.0,
                    lambda: tf.ones_like(pixels[..., :1]))
    rgb = colour * alpha + WHITE * (1.0 - alpha)

    height, width = tf.shape(rgb)[0], tf.shape(rgb)[1]
    side = tf.minimum(height, width)
    square = tf.image.crop_to_bounding_box(rgb, (height - side) // 2, (width - side) // 2,
                                           side, side)
    scaled = tf.cond(side >= IMAGE_SIZE,
                     lambda: tf.image.resize(square, [IMAGE_SIZE, IMAGE_SIZE], method="area"),
                     lambda: tf.image.resize(square, [IMAGE_SIZE, IMAGE_SIZE], method="bicubic"))
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8)
