"""The appliance as a user runs it: `run -p PORT:6006 -v HOSTDIR:/cifar10_train IMAGE`.

One container for the whole module, trained on a small synthetic set for a few hundred steps;
each test checks one thing a user would see. A watcher notes from outside, as a user would,
when TensorBoard first answers and when the first eval result appears.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.results import read_results
from tests.harness.container_runs import (HOST_OWNER, MAX_STEPS, SMALL_RUN, owned_train_dir,
                                          run_folder, wait_on_container)
from tests.harness.figures import record
from tests.harness.podman import Container, TrackedContainers
from tests.harness.ports import answers_http, free_port
from tests.harness.waiting import GaveUp

pytestmark = pytest.mark.container

TENSORBOARD_WITHIN_SECS = 180
FIRST_EVAL_WITHIN_SECS = 300
FINISHED_WITHIN_SECS = 600


class Milestones(threading.Thread):
    """Polls from the host, from the container's start on, for the moments a user would notice."""

    def __init__(self, container: Container, port: int, train_dir: Path):
        super().__init__(daemon=True)
        self.container, self.port, self.run_dir = container, port, run_folder(train_dir)
        self.tensorboard_answered = threading.Event()
        self.first_eval_written = threading.Event()
        self.seconds: dict[str, float] = {}
        self._stop_polling = threading.Event()

    def run(self) -> None:
        while not self._stop_polling.is_set():
            if not self.tensorboard_answered.is_set() and answers_http(self.port):
                self._reached("tensorboard", self.tensorboard_answered)
            if not self.first_eval_written.is_set() and read_results(self.run_dir / "eval"):
                self._reached("first eval", self.first_eval_written)
            if self.tensorboard_answered.is_set() and self.first_eval_written.is_set():
                return
            self._stop_polling.wait(0.25)

    def _reached(self, name: str, event: threading.Event) -> None:
        self.seconds[name] = time.monotonic() - self.container.started_at
        event.set()

    def stop(self) -> None:
        self._stop_polling.set()
        self.join()


@dataclass
class Appliance:
    container: Container
    port: int
    train_dir: Path
    milestones: Milestones
    gave_up: str = ""  # the first wait that failed: later tests fail at once, not after their timeouts

    def wait_until(self, condition, what: str, timeout: float) -> None:
        """Waits until condition() is true, `timeout` counting from the container's start."""
        if self.gave_up:
            pytest.fail(f"not waiting for {what}: an earlier wait failed ({self.gave_up})")
        left = timeout - (time.monotonic() - self.container.started_at)
        try:
            wait_on_container(self.container, condition, max(0.0, left),
                              f"{what} (within {timeout} s of the start)")
        except GaveUp as gave_up:
            self.gave_up = str(gave_up).splitlines()[0]
            raise

    @property
    def run_dir(self) -> Path:
        """The run the appliance trains, in the mounted train_dir."""
        return run_folder(self.train_dir)

    def finished(self) -> bool:
        """Trained to max_steps and evaluated the last checkpoint."""
        return any(result["step"] == MAX_STEPS
                   for result in read_results(self.run_dir / "eval"))

    def logs_tail(self) -> str:
        return "container logs (the end):\n" + self.container.logs()[-6000:]


@pytest.fixture(scope="module")
def appliance(podman, image, tmp_path_factory):
    train_dir = owned_train_dir(tmp_path_factory.mktemp("appliance"))
    port = free_port()
    with TrackedContainers(podman, image) as tracked:
        container = tracked.run(env=SMALL_RUN, ports={port: 6006},
                                volumes={train_dir: "/cifar10_train"})
        milestones = Milestones(container, port, train_dir)
        milestones.start()
        try:
            yield Appliance(container, port, train_dir, milestones)
        finally:
            milestones.stop()


def test_tensorboard_answers_on_the_published_port(appliance):
    appliance.wait_until(appliance.milestones.tensorboard_answered.is_set,
                         "TensorBoard answering", TENSORBOARD_WITHIN_SECS)
    record("container start -> TensorBoard answers",
           f"{appliance.milestones.seconds['tensorboard']:.1f} s")


def test_becomes_healthy(appliance):
    appliance.wait_until(lambda: appliance.container.healthcheck().returncode == 0,
                         "healthy (podman healthcheck run)", TENSORBOARD_WITHIN_SECS)


def test_evaluates_the_first_checkpoint(appliance):
    appliance.wait_until(appliance.milestones.first_eval_written.is_set,
                         "a line in eval/results.jsonl", FIRST_EVAL_WITHIN_SECS)
    record("container start -> first eval result",
           f"{appliance.milestones.seconds['first eval']:.1f} s")
    first = read_results(appliance.run_dir / "eval")[0]
    assert 0.0 <= first["precision_at_1"] <= 1.0


def test_writes_checkpoints_and_event_files(appliance):
    run_dir = appliance.run_dir
    appliance.wait_until(lambda: (run_dir / "checkpoint").is_file(), "the checkpoint file",
                         FIRST_EVAL_WITHIN_SECS)
    assert list(run_dir.glob("model.ckpt-*.index"))
    assert list(run_dir.glob("model.ckpt-*.data-*"))
    assert list(run_dir.glob("events.out.tfevents.*")), "no training event file"
    appliance.wait_until(lambda: list(run_dir.glob("eval/events.out.tfevents.*")),
                         "an eval event file", FIRST_EVAL_WITHIN_SECS)


def test_trains_to_max_steps_and_stays_healthy(appliance):
    appliance.wait_until(appliance.finished, f"eval of the step {MAX_STEPS} checkpoint",
                         FINISHED_WITHIN_SECS)
    assert (appliance.run_dir / f"model.ckpt-{MAX_STEPS}.index").is_file()
    health = appliance.container.healthcheck()
    assert health.returncode == 0, f"{health.stdout}{health.stderr}\n{appliance.logs_tail()}"
    assert answers_http(appliance.port)


def test_files_belong_to_the_train_dir_owner(appliance):
    appliance.wait_until(appliance.finished, "a finished run", FINISHED_WITHIN_SECS)
    not_owned = [f"{path} ({path.stat().st_uid}:{path.stat().st_gid})"
                 for path in appliance.train_dir.rglob("*")
                 if (path.stat().st_uid, path.stat().st_gid) != (HOST_OWNER, HOST_OWNER)]
    assert not not_owned, f"not owned by {HOST_OWNER}:{HOST_OWNER}: {not_owned}"
