"""`stop` keeps the work: a checkpoint at the step reached, and the next run goes on from it."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import owned_train_dir
from .podman import TrackedContainers
from .test_appliance import SMALL_RUN, is_beyond_help

pytestmark = pytest.mark.container

# Far more steps than the test waits for: the run is stopped mid-training.
ENDLESS_RUN = {**SMALL_RUN, "CIFAR10_TRAIN_MAX_STEPS": "1000000"}
# `docker stop`'s default grace before SIGKILL.
GRACE_SECS = 10
TRAINING_WITHIN_SECS = 300
RESUMED_WITHIN_SECS = 180


@dataclass
class StoppedRun:
    train_dir: Path
    exit_code: int
    stop_seconds: float
    logs: str


def wait_for_line(container, pattern: str, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = container.logs()
        if match := re.search(pattern, logs, flags=re.M):
            return match
        if is_beyond_help(container):
            break
        time.sleep(1)
    pytest.fail(f"no line matching {pattern!r} within {timeout} s; the end of the logs:\n"
                f"{container.logs()[-6000:]}")


@pytest.fixture(scope="module")
def stopped_run(podman, image, tmp_path_factory):
    """An appliance run that got past its first checkpoint, then was stopped."""
    train_dir = owned_train_dir(tmp_path_factory.mktemp("stop_and_resume"))
    with TrackedContainers(podman, image) as tracked:
        container = tracked.run(env=ENDLESS_RUN, volumes={train_dir: "/cifar10_train"})
        wait_for_line(container, r"saved model\.ckpt-50\b", TRAINING_WITHIN_SECS)
        started = time.monotonic()
        container.stop(GRACE_SECS)
        stop_seconds = time.monotonic() - started
        return StoppedRun(train_dir, container.state()["ExitCode"], stop_seconds, container.logs())


def test_stop_saves_a_checkpoint_at_the_step_reached(stopped_run):
    stopped = re.search(r"stopped at step (\d+) on request", stopped_run.logs)
    assert stopped, f"the trainer did not report its stop:\n{stopped_run.logs[-6000:]}"
    step = stopped.group(1)
    state = (stopped_run.train_dir / "checkpoint").read_text()
    assert f'model_checkpoint_path: "model.ckpt-{step}"' in state
    assert (stopped_run.train_dir / f"model.ckpt-{step}.index").is_file()


def test_stop_ends_within_the_grace_period(stopped_run):
    assert stopped_run.exit_code == 0, f"exit code {stopped_run.exit_code} (137: killed)"
    assert stopped_run.stop_seconds < GRACE_SECS


def test_next_run_resumes_from_the_last_checkpoint(stopped_run, containers):
    step = re.search(r"stopped at step (\d+)", stopped_run.logs).group(1)
    container = containers.run(env=ENDLESS_RUN, volumes={stopped_run.train_dir: "/cifar10_train"})
    wait_for_line(container, rf"resumed from model\.ckpt-{step}$", RESUMED_WITHIN_SECS)
