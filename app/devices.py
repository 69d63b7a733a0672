"""How a process uses the machine: CPU threads, and GPU memory that it shares with its neighbours.

Train and eval run side by side on one GPU. By default TensorFlow maps nearly all of a GPU's memory
into the first process that touches it, so both turn on memory growth, and eval can be capped.
Must run before TensorFlow executes its first op.
"""
from __future__ import annotations

import tensorflow as tf


def configure(threads: int = 0, gpu_memory_limit_mb: int = 0) -> list[str]:
    """Returns the names of the GPUs this process will use (empty on a CPU-only machine)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        if gpu_memory_limit_mb:
            # A capped virtual device; TensorFlow refuses memory growth together with it.
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=gpu_memory_limit_mb)])
        else:
            tf.config.experimental.set_memory_growth(gpu, True)
    return [gpu.name for gpu in gpus]


def mixed_precision_policy(setting: str) -> str:
    """The Keras dtype policy for train.mixed_precision (see docker/config.yaml).

    Only bfloat16: it has float32's range, so it needs no loss scaling, and GPUs without it
    (before Ampere) train in float32."""
    if setting == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        capability = (tf.config.experimental.get_device_details(gpus[0]).get(
            "compute_capability", (0, 0)) if gpus else (0, 0))
        return "mixed_bfloat16" if capability >= (8, 0) else "float32"
    return {"float32": "float32", "bfloat16": "mixed_bfloat16"}[setting]


def use_xla(setting: str) -> bool:
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "enabled"
