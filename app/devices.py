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


def mixed_precision_policy(setting: str, bfloat16_is_safe: bool) -> str:
    """The Keras dtype policy for train.mixed_precision (see app/defaults.yaml).

    Only bfloat16: it has float32's range, so it needs no loss scaling. `auto` takes it where the
    hardware has it (GPUs from Ampere on, CPUs with bfloat16 instructions) and the recipe is safe
    in it: the fast recipe's batch norm is; the tutorial CNN at its learning rate of 0.1 was seen
    to diverge in bfloat16 on the synthetic set (loss 2e8 at step 300), so it stays in float32."""
    if setting == "auto":
        if not bfloat16_is_safe:
            return "float32"
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            capability = tf.config.experimental.get_device_details(gpus[0]).get(
                "compute_capability", (0, 0))
            return "mixed_bfloat16" if capability >= (8, 0) else "float32"
        # oneDNN's bfloat16 convolutions trained the tutorial CNN 1.6x faster than float32 on a
        # Zen 5 (bench/lrn.py).
        return "mixed_bfloat16" if _cpu_has_bfloat16() else "float32"
    return {"float32": "float32", "bfloat16": "mixed_bfloat16"}[setting]


def _cpu_has_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next(line for line in cpuinfo if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_xla(setting: str) -> bool:
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "enabled"
