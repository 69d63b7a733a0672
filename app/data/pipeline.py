"""The tf.data pipelines: CIFAR-10's images from memory to the trainer and to eval.

The images stay in memory as uint8; the training pipeline gathers a batch of them by index and
augments the whole batch at once, which is far cheaper than a per-image map.
"""
from __future__ import annotations

import numpy as np

from app.data.cifar10 import IMAGE_SIZE, DataError


def training_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, augment=None,
                     seed=None):
    """Endless, shuffled batches, each augmented as a whole by augment(uint8 images), or left
    uint8 without one (a recipe that augments in the training step)."""
    import tensorflow as tf

    all_images, all_labels = tf.constant(images), tf.constant(labels)

    def gather_and_augment(indices):
        batch = tf.gather(all_images, indices)
        return (augment(batch) if augment else batch), tf.gather(all_labels, indices)

    dataset = (tf.data.Dataset.range(len(labels))
               .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
               .repeat()
               .batch(batch_size, drop_remainder=True)
               .map(gather_and_augment, num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    # Several workers each take every n-th batch; the index dataset has no files to split.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def random_crops(images, size: int):
    """A size x size window at a random place in each image, for the whole batch at once."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    margin = tf.shape(images)[1] - size + 1
    top = tf.random.uniform([batch], 0, margin, dtype=tf.int32)
    left = tf.random.uniform([batch], 0, margin, dtype=tf.int32)
    window = tf.range(size)
    images = tf.gather(images, top[:, None] + window, axis=1, batch_dims=1)
    return tf.gather(images, left[:, None] + window, axis=2, batch_dims=1)


def random_flips(images):
    """Each image of the batch mirrored left-right, or not, at even odds."""
    import tensorflow as tf

    flip = tf.random.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def eval_images(images, size: int):
    """The central size x size crop, standardized: what eval and serving see (the recipe's
    input_size)."""
    import tensorflow as tf

    offset = (IMAGE_SIZE - size) // 2
    crop = images[:, offset:offset + size, offset:offset + size, :]
    return tf.image.per_image_standardization(tf.cast(crop, tf.float32))


def eval_dataset(images: np.ndarray, labels: np.ndarray, num_examples: int, batch_size: int,
                 size: int):
    """The first num_examples test images, each exactly once, in order, centrally cropped."""
    import tensorflow as tf

    if num_examples > len(labels):
        raise DataError(f"eval.num_examples is {num_examples:,} but the test set holds only "
                        f"{len(labels):,} images")
    return (tf.data.Dataset.from_tensor_slices((images[:num_examples], labels[:num_examples]))
            .batch(batch_size)
            .map(lambda x, y: (eval_images(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
