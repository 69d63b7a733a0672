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
