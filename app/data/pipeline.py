"""The tf.data pipelines: CIFAR-10's images from memory to the trainer and to eval.

The images stay in memory as uint8; the training pipeline gathers a batch of them by index and
augments the whole batch at once, which is far cheaper than a per-image map.

Training batches are a pure function of (seed, step): batch s holds the images at positions
s*B .. s*B+B-1 of an endless stream that runs through the training set once per epoch, each epoch
in its own order (a permutation drawn from the seed and the epoch's number), and its augmentation
draws from a seed made of (seed, s). So the pipeline can start at any step, and a run resumed at
step s sees exactly the batches the unbroken run saw from there. (A shuffle buffer and stateful
random ops would start over at a restart: the resumed run would learn from other batches.)
"""
from __future__ import annotations

import numpy as np

from app.data.cifar10 import IMAGE_SIZE, DataError

# What each kind of draw folds into its stateless seed, so that the epochs' orders and the
# augmentations never share a random stream.
SHUFFLE_STREAM, AUGMENT_STREAM = 0, 1


def training_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, augment=None,
                     seed: int = 0, start_step: int = 0):
    """Endless shuffled batches from `start_step` on, each augmented as a whole by
    augment(uint8 images, seed), or left uint8 without one (a recipe that augments in the
    training step draws the same seeds there: augmentation_seed)."""
    import tensorflow as tf

    all_images, all_labels = tf.constant(images), tf.constant(labels)
    count = len(labels)

    def batch_of_step(step):
        indices = shuffled_positions(step, batch_size, count, seed)
        batch = tf.gather(all_images, indices)
        if augment:
            batch = augment(batch, augmentation_seed(seed, step))
        return batch, tf.gather(all_labels, indices)

    dataset = (tf.data.Dataset.counter(start_step)
               .map(batch_of_step, num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    # Several workers each take every n-th batch; the step counter has no files to split.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def shuffled_positions(step, batch_size: int, count: int, seed: int):
    """The indices of the images of batch `step`: positions step*B.. of the stream, each epoch
    a permutation of 0..count-1 of its own. A batch spans two epochs at most when B <= count,
    more in a set smaller than a batch (a small synthetic set)."""
    import tensorflow as tf

    positions = tf.cast(step, tf.int64) * batch_size + tf.range(batch_size, dtype=tf.int64)
    epochs = positions // count
    first_epoch = epochs[0]

    def order_of(epoch):
        return tf.random.experimental.index_shuffle(
            positions % count, tf.stack([tf.constant(seed, tf.int64) * 2 + SHUFFLE_STREAM, epoch]),
            count - 1)

    indices = order_of(first_epoch)
    for later in range(1, -(-batch_size // count) + 1):  # the other epochs the batch reaches
        indices = tf.where(epochs == first_epoch + later, order_of(first_epoch + later), indices)
    return indices


def augmentation_seed(seed: int, step, replica=0):
    """The stateless seed of the augmentation of batch `step` (of one replica's share of it,
    where the step augments: every replica draws its own)."""
    import tensorflow as tf

    step_seed = tf.stack([tf.constant(seed, tf.int64) * 2 + AUGMENT_STREAM,
                          tf.cast(step, tf.int64)])
    return tf.random.experimental.stateless_fold_in(step_seed, tf.cast(replica, tf.int64))


def random_crops(images, size: int, seed):
    """A size x size window at a random place in each image, for the whole batch at once."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    margin = tf.shape(images)[1] - size + 1
    top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform([batch], top_seed, 0, margin, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], left_seed, 0, margin, dtype=tf.int32)
    window = tf.range(size)
    images = tf.gather(images, top[:, None] + window, axis=1, batch_dims=1)
    return tf.gather(images, left[:, None] + window, axis=2, batch_dims=1)


def random_flips(images, seed):
    """Each image of the batch mirrored left-right, or not, at even odds."""
    import tensorflow as tf

    flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < 0.5
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
