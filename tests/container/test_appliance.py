"""The appliance as a user runs it: `run -p PORT:6006 -v HOSTDIR:/cifar10_train IMAGE`.

One container for the whole module, trained on a small synthetic set for a few hundred steps;
each test checks one thing a user would see. A watcher notes from outside, as a user would,
when TensorBoard first answers and when the first eval result appears.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import HOST_OWNER, free_port, owned_train_dir, record
from .podman import Container, TrackedContainers

pytestmark = pytest.mark.container

MAX_STEPS = 300
SMALL_RUN = {
    "CIFAR10_DATA_SOURCE": "synthetic",
    "CIFAR10_DATA_SYNTHETIC_TRAIN_EXAMPLES": "2000",
    "CIFAR10_DATA_SYNTHETIC_TEST_EXAMPLES": "500",
    "CIFAR10_TRAIN_MAX_STEPS": str(MAX_STEPS),
    "CIFAR10_TRAIN_BATCH_SIZE": "32",
    "CIFAR10_TRAIN_CHECKPOINT_EVERY_STEPS": "50",
    "CIFAR10_TRAIN_SUMMARY_EVERY_STEPS": "50",
    "CIFAR10_EVAL_INTERVAL_SECS": "5",
    "CIFAR10_EVAL_NUM_EXAMPLES": "500",
    "CIFAR10_EVAL_BATCH_SIZE": "100",
}
TENSORBOARD_WITHIN_SECS = 180
FIRST_EVAL_WITHIN_SECS = 300
FINISHED_WITHIN_SECS = 600


def answers_http(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def is_beyond_help(container: Container) -> bool:
    """Exited, or supervisord gave up on a program (FATAL): no use waiting any longer."""
    return not container.is_running() or "entered FATAL state" in container.logs()


def eval_results(train_dir: Path) -> list[dict]:
    results = train_dir / "eval" / "results.jsonl"
    if not results.is_file():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


class Milestones(threading.Thread):
    """Polls from the host, from the container's start on, for the moments a user would notice."""

    def __init__(self, container: Container, port: int, train_dir: Path):
        super().__init__(daemon=True)
        self.container, self.port, self.train_dir = container, port, train_dir
        self.tensorboard_answered = threading.Event()
        self.first_eval_written = threading.Event()
        self.seconds: dict[str, float] = {}
        self._stop_polling = threading.Event()

    def run(self) -> None:
        while not self._stop_polling.is_set():
            if not self.tensorboard_answered.is_set() and answers_http(self.port):
                self._reached("tensorboard", self.tensorboard_answered)
            if not self.first_eval_written.is_set() and eval_results(self.train_dir):
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
        """Waits, counting from the container's start, until condition() is true."""
        if self.gave_up:
            pytest.fail(f"not waiting for {what}: an earlier wait failed ({self.gave_up})")
        while not condition():
            elapsed = time.monotonic() - self.container.started_at
            if elapsed > timeout or is_beyond_help(self.container):
                self.gave_up = f"{what}, not within {elapsed:.0f} s of the start"
                pytest.fail(f"{self.gave_up}\n{self.logs_tail()}")
            time.sleep(1)

    def finished(self) -> bool:
        """Trained to max_steps and evaluated the last checkpoint."""
        return any(result["step"] == MAX_STEPS for result in eval_results(self.train_dir))

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
    first = eval_results(appliance.train_dir)[0]
    assert 0.0 <= first["precision_at_1"] <= 1.0


def test_writes_checkpoints_and_event_files(appliance):
    train_dir = appliance.train_dir
    appliance.wait_until(lambda: (train_dir / "checkpoint").is_file(), "the checkpoint file",
                         FIRST_EVAL_WITHIN_SECS)
    assert list(train_dir.glob("model.ckpt-*.index"))
    assert list(train_dir.glob("model.ckpt-*.data-*"))
    assert list(train_dir.glob("events.out.tfevents.*")), "no training event file"
    appliance.wait_until(lambda: list(train_dir.glob("eval/events.out.tfevents.*")),
                         "an eval event file", FIRST_EVAL_WITHIN_SECS)


def test_trains_to_max_steps_and_stays_healthy(appliance):
    appliance.wait_until(appliance.finished, f"eval of the step {MAX_STEPS} checkpoint",
                         FINISHED_WITHIN_SECS)
    assert (appliance.train_dir / f"model.ckpt-{MAX_STEPS}.index").is_file()
    health = appliance.container.healthcheck()
    assert health.returncode == 0, f"{health.stdout}{health.stderr}\n{appliance.logs_tail()}"
    assert answers_http(appliance.port)


def test_files_belong_to_the_train_dir_owner(appliance):
    appliance.wait_until(appliance.finished, "a finished run", FINISHED_WITHIN_SECS)
    not_owned = [f"{path} ({path.stat().st_uid}:{path.stat().st_gid})"
                 for path in appliance.train_dir.rglob("*")
                 if (path.stat().st_uid, path.stat().st_gid) != (HOST_OWNER, HOST_OWNER)]
    assert not not_owned, f"not owned by {HOST_OWNER}:{HOST_OWNER}: {not_owned}"
