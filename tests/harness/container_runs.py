"""The appliance's container as the tests run it: a small synthetic run, the train_dir volumes
users mount, and waiting on a container that may die meanwhile."""
from __future__ import annotations

import os
import re
from pathlib import Path

from tests.harness import log_lines
from tests.harness.containers import Container
from tests.harness.environment import run_name
from tests.harness.waiting import GaveUp, wait_until

MAX_STEPS = 300
SMALL_RUN = {  # as environment variables: `docker run -e CIFAR10_... IMAGE`
    "CIFAR10_DATA_SOURCE": "synthetic",
    "CIFAR10_DATA_SYNTHETIC_TRAIN_EXAMPLES": "2000",
    "CIFAR10_DATA_SYNTHETIC_TEST_EXAMPLES": "500",
    "CIFAR10_TRAIN_MAX_STEPS": str(MAX_STEPS),
    "CIFAR10_TRAIN_BATCH_SIZE": "32",
    # The tutorial's 0.1 was seen to diverge at batch 32 after ~400 steps (exit 3): half of it.
    "CIFAR10_TUTORIAL_INITIAL_LEARNING_RATE": "0.05",
    "CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS": "50",
    "CIFAR10_RUNTIME_SUMMARY_EVERY_STEPS": "50",
    "CIFAR10_EVAL_EVERY_SECS": "5",
    "CIFAR10_EVAL_NUM_EXAMPLES": "500",
    "CIFAR10_EVAL_BATCH_SIZE": "100",
}
# Far more steps than any test waits for: a run that trains until it is stopped.
ENDLESS_RUN = {**SMALL_RUN, "CIFAR10_TRAIN_MAX_STEPS": "1000000"}

# `docker stop` sends SIGTERM, then SIGKILL after this many seconds (its default -t).
DOCKER_STOP_GRACE_SECS = 10

# A uid:gid the image does not know, as a user's own is: what the container writes into a
# mounted train_dir must belong to the folder's owner.
HOST_OWNER = 1234


def owned_train_dir(parent: Path) -> Path:
    """An empty folder for /cifar10_train, owned by HOST_OWNER."""
    folder = parent / "cifar10_train"
    folder.mkdir()
    os.chown(folder, HOST_OWNER, HOST_OWNER)
    return folder


def run_folder(train_dir: Path, env: dict = SMALL_RUN) -> Path:
    """Where a container started with `env` keeps its run in the train_dir mounted at
    /cifar10_train: <train_dir>/<paths.run>."""
    return train_dir / run_name(environ=env)


def root_owned_volume(parent: Path) -> Path:
    """What `docker run -v DIR:/cifar10_train` makes of a DIR that does not exist yet: an empty
    folder of root's."""
    made = parent / "made_by_the_engine"
    made.mkdir(parents=True)
    os.chown(made, 0, 0)
    return made


def is_beyond_help(container: Container) -> bool:
    """Exited, or supervisord gave up on a program (FATAL): no use waiting any longer."""
    return not container.is_running() or "entered FATAL state" in container.logs()


def wait_on_container(container: Container, condition, timeout: float, what: str,
                      interval: float = 1.0):
    """wait_until for something a running appliance should do: gives up at once when it is
    beyond help, and either way GaveUp's message ends with the end of the container's logs."""
    __tracebackhide__ = True

    def unless_beyond_help():
        if value := condition():
            return value
        if is_beyond_help(container):
            raise GaveUp(f"the container exited, or supervisord gave up on a program, before "
                         f"{what}")
        return value

    try:
        return wait_until(unless_beyond_help, timeout, what, interval)
    except GaveUp as error:
        raise GaveUp(f"{error}\ncontainer logs (the end):\n{container.logs()[-6000:]}") from None


def wait_for_line(container: Container, pattern: re.Pattern, timeout: float, what: str,
                  **groups) -> re.Match:
    """The first line of the container's logs that matches `pattern` (with these values of its
    named groups), once there is one."""
    def found():
        return log_lines.find(pattern, container.logs(), **groups)
    return wait_on_container(container, found, timeout, what)[0]
