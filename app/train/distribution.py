"""Which tf.distribute strategy trains, and which process of a job owns train_dir.

    auto          MirroredStrategy over all visible GPUs when there are several; otherwise
                  TensorFlow's default strategy (one GPU, or the CPU)
    mirrored      MirroredStrategy over all visible GPUs (or the CPU devices)
    multi_worker  MultiWorkerMirroredStrategy across the processes named in TF_CONFIG

Only the chief writes checkpoints and summaries into train_dir. The other workers must still
take part in saving (a save runs collective ops), so they save into a temporary folder of their own
and remove it when they finish: TensorFlow's documented pattern for multi-worker training.

TF_CONFIG is checked before any connection is tried: JSON, a task that is in its cluster, and no
address named twice; anything else is a DistributionError (exit 2) that says what is wrong. When a
job loses one of its processes (a crash, a reboot, a network cut), TensorFlow's error names the
task (`/job:worker/replica:0/task:1`) and `lost_contact` says it in TF_CONFIG's words: `worker 1
at worker:2222`. TensorFlow's coordination service (which MultiWorkerMirroredStrategy starts, led
by the chief) declares a task lost once it sent no heartbeat for 10 s, its default; a process
that died outright is noticed sooner, when its connections close.
"""
from __future__ import annotations

import json
import os
import re
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
                f"runtime.strategy is multi_worker but TF_CONFIG is not set; it must name the "
                f"cluster and this task, e.g. {TF_CONFIG_EXAMPLE}")
        tf_config()  # before the strategy tries to reach anyone
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(None if gpus else cpus)
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host-a:2222", "host-b:2222"]}, '
                     '"task": {"type": "worker", "index": 0}}')


def tf_config() -> dict:
    """TF_CONFIG, checked: {} when it is not set. A value TensorFlow would misread (it waits for
    tasks that are not there, or two tasks fight over one port) is a DistributionError that names
    what is wrong, before anything connects."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributionError(
            f"TF_CONFIG is not JSON ({error.msg} at character {error.pos}); it must name the "
            f"cluster and this task, e.g. {TF_CONFIG_EXAMPLE}") from None
    if not isinstance(parsed, dict):
        raise DistributionError(f"TF_CONFIG must be a JSON object, e.g. {TF_CONFIG_EXAMPLE}")
    cluster, task_spec = parsed.get("cluster", {}), parsed.get("task", {})
    if not isinstance(cluster, dict) or not all(
            isinstance(addresses, list) and all(isinstance(a, str) for a in addresses)
            for addresses in cluster.values()):
        raise DistributionError(
            f"TF_CONFIG's cluster must map each job to a list of \"host:port\" addresses, e.g. "
            f"{TF_CONFIG_EXAMPLE}")
    seen: dict[str, str] = {}
    for job, addresses in cluster.items():
        for index, address in enumerate(addresses):
            if address in seen:
                raise DistributionError(
                    f"TF_CONFIG names the address {address} twice ({seen[address]} and {job} "
                    f"{index}): each process of the job needs an address of its own")
            seen[address] = f"{job} {index}"
    if not isinstance(task_spec, dict):
        raise DistributionError(f"TF_CONFIG's task must be an object, e.g. {TF_CONFIG_EXAMPLE}")
    if cluster or task_spec:
        task_type, index = task_spec.get("type"), task_spec.get("index", 0)
        if isinstance(index, str) and index.isdigit():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or task_type not in cluster \
                or not 0 <= index < len(cluster[task_type]):
            jobs = ", ".join(f"{job} 0..{len(addresses) - 1}"
                             for job, addresses in cluster.items() if addresses) or "no tasks"
            raise DistributionError(
                f"TF_CONFIG's task ({task_type} {index}) is not in its cluster ({jobs}): "
                f"the task says which of the cluster's processes this one is")
    return parsed


def lost_contact(error_message: str) -> str | None:
    """The other processes of the job that a TensorFlow error names as gone (unhealthy, down, or
    unreachable), as `worker 1 at worker:2222`; None when it names none of them."""
    cluster = tf_config().get("cluster", {})
    own = task()
    named = []
    for job, index in re.findall(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)", error_message):
        found = (job, int(index))
        if found != own and found not in named and job in cluster \
                and found[1] < len(cluster[job]):
            named.append(found)
    if not named:  # some errors name only the address they could not reach
        named = [(job, index) for job, addresses in cluster.items()
                 for index, address in enumerate(addresses)
                 if (job, index) != own and address in error_message]
    if not named:
        return None
    return ", ".join(f"{job} {index} at {cluster[job][index]}" for job, index in named)


def describe(strategy: tf.distribute.Strategy) -> str:
    """How the training is spread, in a user's words."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        cluster = tf_config().get("cluster", {})
        tasks = sum(len(addresses) for addresses in cluster.values())
        task_type, index = task()
        return (f"as {task_type} {index} of a job of {tasks} processes training in sync "
                f"({replicas} replicas in all, MultiWorkerMirroredStrategy)")
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"{replicas} replicas in sync on this machine (MirroredStrategy)"
    return "one replica"


def task() -> tuple[str | None, int]:
    """This process's (task type, index) in TF_CONFIG; (None, 0) outside a multi-worker job."""
    task_spec = tf_config().get("task", {})
    return task_spec.get("type"), int(task_spec.get("index", 0))


def is_chief() -> bool:
    """The chief is the task named 'chief', or worker 0 of a cluster that has no chief."""
    cluster = tf_config().get("cluster", {})
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
