"""How a process uses the machine: which devices, how many CPU threads, and GPU memory that it
shares with its neighbours; and one line that says what it computes on.

Train and eval run side by side on one GPU. By default TensorFlow maps nearly all of a GPU's memory
into the first process that touches it, so both turn on memory growth, and eval can be capped.
Must run before TensorFlow executes its first op.

A container given GPUs that TensorFlow cannot use would otherwise train on the CPU, a hundred times
slower, saying nothing but a cuInit line: `configure` refuses that unless the config asks for
the CPU (runtime.device / eval.device: cpu).
"""
from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from app.exit_codes import AppError

# What the NVIDIA Container Toolkit reads to hand GPUs to a container (--gpus, Compose's
# `deploy.resources.reservations.devices`); these values hand none.
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
NO_GPUS = {"", "void", "none"}


class GpusNotSeen(AppError):
    """The container was given GPUs and TensorFlow sees none of them."""


def configure(threads: int | str = "auto", device: str = "auto", gpu_memory_limit_mb: int = 0,
              config_key: str = "runtime.device") -> list:
    """Sets the process up; returns the GPUs it will use (empty on the CPU). Raises GpusNotSeen
    when GPUs were given but TensorFlow sees none and `device` is not `cpu`."""
    if threads != "auto":  # else TensorFlow sizes its thread pools by the cores
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if device == "cpu":
        tf.config.set_visible_devices([], "GPU")
        return []
    gpus = tf.config.list_physical_devices("GPU")
    given = gpus_given()
    if not gpus and (given or device == "gpu"):
        raise GpusNotSeen(_why_no_gpu(given, config_key))
    for gpu in gpus:
        if gpu_memory_limit_mb:
            # A capped virtual device; TensorFlow refuses memory growth together with it.
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=gpu_memory_limit_mb)])
        else:
            tf.config.experimental.set_memory_growth(gpu, True)
    return gpus


def gpus_given() -> str | None:
    """What the container was given GPUs by (the variable, or its device nodes); None if none."""
    value = os.environ.get(NVIDIA_VISIBLE_DEVICES)
    if value is not None and value.strip().lower() not in NO_GPUS:
        return f"{NVIDIA_VISIBLE_DEVICES}={value}"
    if list(Path("/dev").glob("nvidia[0-9]*")):
        return "/dev/nvidia* device nodes"
    return None


def _why_no_gpu(given: str | None, config_key: str) -> str:
    build = tf.sysconfig.get_build_info()
    if not build.get("is_cuda_build"):
        cause = ("this TensorFlow has no CUDA support at all: the image (or venv) is the CPU "
                 "flavor (TF_PACKAGE=tensorflow-cpu); build the GPU one, TF_PACKAGE="
                 "'tensorflow[and-cuda]'")
    else:
        cause = (f"likely causes: the NVIDIA Container Toolkit is missing or not set up for this "
                 f"engine (then `docker run --gpus all` fails at once with 'could not select "
                 f"device driver \"\" with capabilities: [[gpu]]', Compose with the same naming "
                 f"\"nvidia\"); the host's NVIDIA driver is older than TensorFlow "
                 f"{tf.__version__}'s CUDA {build.get('cuda_version', '?')} needs (`nvidia-smi` "
                 f"on the host shows the driver and the newest CUDA it supports; TensorFlow's "
                 f"line 'failed call to cuInit' above says so too); or {NVIDIA_VISIBLE_DEVICES} "
                 f"names devices this host does not have")
    told = f"the container was given GPUs ({given})" if given else f"{config_key} is gpu"
    return (f"{told}, but TensorFlow sees none: {cause}. To compute on the CPU on purpose, set "
            f"{config_key}: cpu (environment: CIFAR10_{config_key.replace('.', '_').upper()}=cpu)")


def describe(gpus: list) -> str:
    """What this process computes on, in one line: each GPU's name, memory and compute
    capability, and the CUDA and cuDNN TensorFlow was built with; or the CPU."""
    build = tf.sysconfig.get_build_info()
    if not gpus:
        cores = len(os.sched_getaffinity(0))
        extras = ", bfloat16 instructions" if cpu_has_bfloat16() else ""
        return f"the CPU ({cores} cores{extras}), TensorFlow {tf.__version__}"
    memory = _usable_memory_by_gpu()
    described = []
    for index, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        capability = ".".join(map(str, details.get("compute_capability", ("?",))))
        size = f"{memory[index] / 2**30:.1f} GiB, " if index < len(memory) else ""
        described.append(f"{details.get('device_name', gpu.name)} ({size}compute capability "
                         f"{capability})")
    return (f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: {'; '.join(described)}; "
            f"TensorFlow {tf.__version__} built with CUDA {build.get('cuda_version', '?')} and "
            f"cuDNN {build.get('cudnn_version', '?')}")


def _usable_memory_by_gpu() -> list[int]:
    """The memory TensorFlow may use on each GPU, in bytes (its device list knows it; the public
    API only after the first allocation)."""
    from tensorflow.python.client import device_lib

    return [device.memory_limit for device in device_lib.list_local_devices()
            if device.device_type == "GPU"]


# Tensor cores compute in float16 from Volta (7.0: V100; 7.5: T4) on, in bfloat16 from Ampere
# (8.0: A100) on. Before Volta a GPU has no tensor cores, and float16 gains little or nothing.
FLOAT16_FROM, BFLOAT16_FROM = (7, 0), (8, 0)
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def mixed_precision_policy(setting: str, *, bfloat16_is_safe: bool, float16_is_safe: bool,
                           compute_capability: tuple[int, int] | None,
                           cpu_has_bfloat16: bool) -> str:
    """The Keras dtype policy for train.mixed_precision (see app/config/defaults.yaml), given
    the recipe's safety in each type (app/model/recipes/recipe.py), the first GPU's compute
    capability (None on the CPU) and whether the CPU has bfloat16 instructions.

    `auto` takes the type the hardware computes fast in, if the recipe is safe in it: bfloat16
    (float32's range, so no loss scaling) on GPUs from Ampere on, and on CPUs with bfloat16
    instructions, where oneDNN's bfloat16 convolutions trained the tutorial CNN 1.6x faster than
    float32 on a Zen 5 (bench/lrn.py); float16, with dynamic loss scaling (app/train/
    loss_scaling.py), on Volta and Turing; otherwise float32. The tutorial CNN is safe in
    neither (it was seen to diverge in bfloat16 on the synthetic set: loss 2e8 at step 300)."""
    if setting != "auto":
        return POLICIES[setting]
    if compute_capability is None:
        return "mixed_bfloat16" if bfloat16_is_safe and cpu_has_bfloat16 else "float32"
    if compute_capability >= BFLOAT16_FROM and bfloat16_is_safe:
        return "mixed_bfloat16"
    if compute_capability >= FLOAT16_FROM and float16_is_safe:
        return "mixed_float16"
    return "float32"


def compute_capability(gpus: list) -> tuple[int, int] | None:
    """The first GPU's compute capability, (major, minor); None without GPUs."""
    if not gpus:
        return None
    return tuple(tf.config.experimental.get_device_details(gpus[0]).get(
        "compute_capability", (0, 0)))


def cpu_has_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next(line for line in cpuinfo if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def describe_precision(policy: str) -> str:
    return {"mixed_bfloat16": "computing in bfloat16 (the weights in float32)",
            "mixed_float16": "computing in float16 with dynamic loss scaling (the weights in "
                             "float32)"}.get(policy, "computing in float32")


def use_xla(setting: str) -> bool:
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "enabled"
