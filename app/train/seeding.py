"""Where a run's randomness comes from: one seed per start, and whether ops must repeat.

Everything random in training draws from the seed: the initial weights (Keras' initializers, which
take their seeds from the global one that keras.utils.set_random_seed sets), the order of each
epoch and every batch's augmentation (stateless draws of (seed, step): app/data/pipeline.py).
So with train.seed set, a run starts from the same weights and sees the same batches, and a run
resumed at step s sees the batches the unbroken run saw. With train.deterministic the ops
themselves repeat too (tf.config.experimental.enable_op_determinism: no kernel that sums in a
varying order), which makes two runs of one config bit-identical on one machine and TensorFlow
build. With train.seed null, each start draws a seed of its own, and runs differ.

One exception: in float16 a step whose gradients overflowed is skipped, the step counter stands
still while the batches go on, and a run resumed after such steps takes up the batches at the
step counter's number, not where the unbroken run was (repeatable still, from the same start).
"""
from __future__ import annotations

import secrets

import keras
import tensorflow as tf

# Seeds drawn for train.seed null stay below this: what a user can write back as train.seed.
DRAWN_SEED_LIMIT = 2**31


def seed_this_start(seed: int | None, deterministic: bool) -> int:
    """Seeds everything random for this process and returns the seed: train.seed, or one drawn
    for this start (the trainer's log says which). app/config refuses train.deterministic
    without a train.seed."""
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if seed is None:
        seed = secrets.randbelow(DRAWN_SEED_LIMIT)
    keras.utils.set_random_seed(seed)
    return seed
