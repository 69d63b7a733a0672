"""Which tf.distribute strategy trains, and which process of a job owns train_dir.

    auto          MirroredStrategy over all visible GPUs when there are several; otherwise
                  TensorFlow's default strategy (one GPU, or the CPU)
    mirrored      MirroredStrategy over all visible GPUs (or the CPU devices)
    multi_worker  MultiWorkerMirroredStrategy across the processes named in TF_CONFIG

Only the chief writes checkpoints and summaries into train_dir. The other workers must still
take part in saving (a save runs collective ops), so they save into a temporary folder of their own
and remove it when they finish: TensorFlow's documented pattern for multi-worker training.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from app.exit_codes import AppError


class DistributionError(AppError):
    """The job's setup is wrong (e.g. no TF_CONFIG for multi_worker)."""
    log_prefix = "config error"


def split_cpu(devices: int) -> None:
    """Presents the CPU as several logical devices, so that distribution runs without GPUs."""
    if devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])


def create_strategy(name: str) -> tf.distribute.Strategy:
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise DistributionError(
                "runtime.strategy is multi_worker but TF_CONFIG is not set; it must name the "
                "cluster and this task, e.g. {\"cluster\": {\"worker\": [\"host1:port\", "
                "\"host2:port\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(None if gpus else cpus)
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe(strategy: tf.distribute.Strategy) -> str:
    """How the training is spread, in a user's words."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        tasks = sum(len(addresses) for addresses in cluster.values())
        task_type, index = task()
        return (f"as {task_type} {index} of a job of {tasks} processes training in sync "
                f"({replicas} replicas in all, MultiWorkerMirroredStrategy)")
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"{replicas} replicas in sync on this machine (MirroredStrategy)"
    return "one replica"


def task() -> tuple[str | None, int]:
    """This process's (task type, index) in TF_CONFIG; (None, 0) outside a multi-worker job."""
    task_spec = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task_spec.get("type"), int(task_spec.get("index", 0))


def is_chief() -> bool:
    """The chief is the task named 'chief', or worker 0 of a cluster that has no chief."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    task_type, index = task()
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in cluster


class OutputFolder:
    """Where this process writes: train_dir for the chief, a throwaway folder for the others."""

    def __init__(self, train_dir: str):
        self.chief = is_chief()
        if self.chief:
            self.path = Path(train_dir)
        else:
            task_type, index = task()
            self.path = Path(tempfile.mkdtemp(prefix=f"cifar10-{task_type}-{index}-"))

    def remove_if_temporary(self) -> None:
        if not self.chief:
            shutil.rmtree(self.path, ignore_errors=True)
