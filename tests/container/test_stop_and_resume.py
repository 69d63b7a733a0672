"""`stop` keeps the work: a checkpoint at the step reached, and the next run goes on from it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.checkpoints import newest_checkpoint
from tests.harness.container_runs import (DOCKER_STOP_GRACE_SECS, ENDLESS_RUN, owned_train_dir,
                                          run_folder, wait_for_line)
from tests.harness.podman import TrackedContainers

pytestmark = pytest.mark.container

TRAINING_WITHIN_SECS = 300
RESUMED_WITHIN_SECS = 180


@dataclass
class StoppedRun:
    train_dir: Path
    exit_code: int
    stop_seconds: float
    logs: str


@pytest.fixture(scope="module")
def stopped_run(podman, image, tmp_path_factory):
    """An appliance run that got past its first checkpoint, then was stopped."""
    train_dir = owned_train_dir(tmp_path_factory.mktemp("stop_and_resume"))
    with TrackedContainers(podman, image) as tracked:
        container = tracked.run(env=ENDLESS_RUN, volumes={train_dir: "/cifar10_train"})
        wait_for_line(container, log_lines.SAVED, TRAINING_WITHIN_SECS, "the save of step 50",
                      step=50)
        started = time.monotonic()
        container.stop(DOCKER_STOP_GRACE_SECS)
        stop_seconds = time.monotonic() - started
        return StoppedRun(train_dir, container.state()["ExitCode"], stop_seconds, container.logs())


def test_stop_saves_a_checkpoint_at_the_step_reached(stopped_run):
    stopped = log_lines.STOPPED_ON_REQUEST.search(stopped_run.logs)
    assert stopped, f"the trainer did not report its stop:\n{stopped_run.logs[-6000:]}"
    step = int(stopped["step"])
    run_dir = run_folder(stopped_run.train_dir, ENDLESS_RUN)
    assert newest_checkpoint(run_dir) == step
    assert (run_dir / f"model.ckpt-{step}.index").is_file()


def test_stop_ends_within_the_grace_period(stopped_run):
    assert stopped_run.exit_code == ExitCode.DONE, f"exit code {stopped_run.exit_code} (137: killed)"
    assert stopped_run.stop_seconds < DOCKER_STOP_GRACE_SECS


def test_next_run_resumes_from_the_last_checkpoint(stopped_run, containers):
    step = log_lines.STOPPED_ON_REQUEST.search(stopped_run.logs)["step"]
    container = containers.run(env=ENDLESS_RUN, volumes={stopped_run.train_dir: "/cifar10_train"})
    wait_for_line(container, log_lines.RESUMED, RESUMED_WITHIN_SECS,
                  f"the trainer to resume from model.ckpt-{step}", step=step)
