"""The appliance as the README's `docker run` starts it, on the real Docker engine, for a user who
publishes TensorBoard's port and so gives it a password, in a file mounted as a secret, and who
gives the appliance some keys as arguments, which reach all three programs:

    docker run -p 127.0.0.1:PORT:6006 -v "$PWD/cifar10_train:/cifar10_train" \\
        -v "$PWD/tb-password:/run/secrets/tb-password:ro" \\
        -e CIFAR10_TENSORBOARD_PASSWORD_FILE=/run/secrets/tb-password cifar10-appliance \\
        --set runtime.checkpoint_every_steps=100 --set eval.num_examples=400 \\
        --set tensorboard.url=http://localhost:PORT

One container for the whole module, on a small synthetic run (checkpoints every 100 steps,
summaries every 10), whose trainer is killed -9 once between two checkpoints, as the host's OOM
killer or a user would: supervisord restarts it, it resumes from its checkpoint and trains to
max_steps. Each test checks one thing a user would see; TensorBoard is asked through its HTTP API
on the published port. A watcher notes from outside, as a user would, when TensorBoard first
answers and when the first eval result appears.

Containers started for one program each (`docker run ... cifar10-appliance train`) and the
appliance given a bad key come last, each in a few seconds.
"""
from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.volume.results import read_results
from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed
from tests.harness.container_runs import (ENDLESS_RUN, HOST_OWNER, MAX_STEPS, SMALL_RUN,
                                          owned_train_dir, run_folder, wait_for_line,
                                          wait_on_container)
from tests.harness.containers import Container, TrackedContainers
from tests.harness.figures import record
from tests.harness.native_stack import program_states
from tests.harness.ports import answers_http, free_port
from tests.harness.tensorboard_api import TensorBoardAPI, going_back
from tests.harness.waiting import GaveUp

pytestmark = pytest.mark.container

CHECKPOINT_EVERY = 100
# A progress line after every call (a second of steps at most), so that the kill lands at a step
# the log has shown, well before the next checkpoint.
RUN = {**SMALL_RUN, "CIFAR10_RUNTIME_SUMMARY_EVERY_STEPS": "10",
       "CIFAR10_RUNTIME_LOG_EVERY_SECS": "0.001",
       "CIFAR10_TENSORBOARD_PASSWORD_FILE": "/run/secrets/tb-password"}
# Given to the appliance as a whole, each over what SMALL_RUN's variables say (every 50 steps, 500
# examples): one key each for train, eval and tensorboard (the URL its log line tells).
EVAL_EXAMPLES = 400


def appliance_arguments(port: int) -> tuple[str, ...]:
    return ("--set", f"runtime.checkpoint_every_steps={CHECKPOINT_EVERY}",
            "--set", f"eval.num_examples={EVAL_EXAMPLES}",
            "--set", f"tensorboard.url=http://localhost:{port}")


# Past two summary steps since the checkpoint, with 80 steps (~5 s) left before the next one for
# the kill to land in.
KILL_AFTER_STEP = CHECKPOINT_EVERY + 20
# The image's health check, every 5 s instead of 30 (the Compose test waits for its own timing).
HEALTH_EVERY = ("--health-interval", "5s")
# The training run's summaries are written at the step they were computed at: the last one, of
# the step that reached max_steps, at max_steps - 1 (eval's at the checkpoint's, max_steps).
LAST_SUMMARY = MAX_STEPS - 1
TENSORBOARD_WITHIN_SECS = 180
FIRST_EVAL_WITHIN_SECS = 300
KILL_WITHIN_SECS = 300
FINISHED_WITHIN_SECS = 900
TRAINING_RUN = "default"
EVAL_RUN = "default/eval"
# One of each kind of data a user looks at, as TensorBoard's tabs ask for it.
CURVES = [(TRAINING_RUN, "scalars", "total_loss"),
          (TRAINING_RUN, "histograms", "conv1/activations"),
          (TRAINING_RUN, "images", "images"),
          (TRAINING_RUN, "text", "config"),
          (EVAL_RUN, "scalars", "precision @ 1")]


class Milestones(threading.Thread):
    """Polls from the host, from the container's start on, for the moments a user would notice."""

    def __init__(self, container: Container, port: int, password: str, run_dir: Path):
        super().__init__(daemon=True)
        self.container, self.port, self.password, self.run_dir = container, port, password, run_dir
        self.tensorboard_answered = threading.Event()
        self.first_eval_written = threading.Event()
        self.seconds: dict[str, float] = {}
        self._stop_polling = threading.Event()

    def run(self) -> None:
        while not self._stop_polling.is_set():
            if not self.tensorboard_answered.is_set() and answers_http(self.port,
                                                                       password=self.password):
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
    password: str
    train_dir: Path
    milestones: Milestones
    kill: dict = field(default_factory=dict)   # the kill -9: step, checkpoint listed, pids
    gave_up: str = ""  # the first wait that failed: later tests fail at once, not after their timeouts

    @property
    def run_dir(self) -> Path:
        return run_folder(self.train_dir)  # RUN names the same run as SMALL_RUN

    @property
    def api(self) -> TensorBoardAPI:
        return TensorBoardAPI(self.port, self.password)

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

    def finished(self) -> bool:
        """Trained to max_steps, evaluated the last checkpoint, and TensorBoard shows both."""
        if not any(result["step"] == MAX_STEPS for result in read_results(self.run_dir / "eval")):
            return False
        try:
            return (max(self.api.steps("scalars", TRAINING_RUN, "total_loss")) >= LAST_SUMMARY
                    and MAX_STEPS in self.api.steps("scalars", EVAL_RUN, "precision @ 1"))
        except (OSError, AssertionError, ValueError):
            return False

    def supervisorctl(self, *args: str) -> str:
        """`docker exec ... /app/entrypoint.sh supervisorctl ARGS`, as the README says."""
        return self.container.exec("/app/entrypoint.sh", "supervisorctl", *args).stdout

    def kill_the_trainer(self) -> None:
        """kill -9 of the trainer (the child of supervisord's `train` process, the prefix_output
        wrapper) once it is past KILL_AFTER_STEP, between two checkpoints."""
        wait_for_line(self.container, log_lines.SAVED, KILL_WITHIN_SECS,
                      f"the save of step {CHECKPOINT_EVERY}", step=CHECKPOINT_EVERY)
        # Found first: supervisorctl takes a second to start, the trainer ~15 steps a second.
        wrapper = self.supervisorctl("pid", "appliance:train").strip()
        child = self.container.exec("cat", f"/proc/{wrapper}/task/{wrapper}/children").stdout
        [trainer] = child.split()
        wait_on_container(self.container, lambda: any(
            step >= KILL_AFTER_STEP for step in log_lines.steps(self.container.logs())),
            KILL_WITHIN_SECS, f"step {KILL_AFTER_STEP}", interval=0.1)
        killed = self.container.exec("bash", "-c", f"kill -9 {trainer}")
        assert killed.returncode == 0, killed.stderr
        steps = log_lines.steps(self.container.logs())
        self.kill = {"wrapper": wrapper, "trainer": trainer, "step": max(steps),
                     "checkpoint": newest_listed(self.run_dir)}


@pytest.fixture(scope="module")
def appliance(docker, image, tmp_path_factory):
    folder = tmp_path_factory.mktemp("appliance")
    train_dir = owned_train_dir(folder)
    password = secrets.token_urlsafe(12)
    password_file = folder / "tb-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o400)
    os.chown(password_file, HOST_OWNER, HOST_OWNER)  # the user's own file: the programs run as them
    port = free_port()
    with TrackedContainers(docker, image) as tracked:
        container = tracked.run(*appliance_arguments(port), env=RUN, ports={port: 6006},
                                options=HEALTH_EVERY, volumes={
                                    train_dir: "/cifar10_train",
                                    password_file: "/run/secrets/tb-password:ro"})
        milestones = Milestones(container, port, password, run_folder(train_dir))
        milestones.start()
        appliance = Appliance(container, port, password, train_dir, milestones)
        try:
            appliance.kill_the_trainer()
            yield appliance
        finally:
            milestones.stop()


def test_tensorboard_answers_on_the_published_port_with_the_password(appliance):
    appliance.wait_until(appliance.milestones.tensorboard_answered.is_set,
                         "TensorBoard answering", TENSORBOARD_WITHIN_SECS)
    record("docker run -> TensorBoard answers", f"{appliance.milestones.seconds['tensorboard']:.1f} s")


@pytest.mark.parametrize("route", ["/", "/data/runs", "/data/plugin/scalars/tags"])
def test_tensorboard_refuses_without_the_password(appliance, route):
    appliance.wait_until(appliance.milestones.tensorboard_answered.is_set,
                         "TensorBoard answering", TENSORBOARD_WITHIN_SECS)
    status, _ = appliance.api.request(route, authorized=False)
    assert status == 401


def test_the_log_says_where_to_open_tensorboard_in_one_line(appliance):
    """The address tensorboard.url gives (TensorBoard itself would name the container's id)."""
    appliance.wait_until(appliance.milestones.tensorboard_answered.is_set,
                         "TensorBoard answering", TENSORBOARD_WITHIN_SECS)
    lines = [line for line in appliance.container.logs().splitlines() if "http://" in line]
    assert lines == [f"tensorboard | open http://localhost:{appliance.port} (TensorBoard on the "
                     f"container's port 6006; behind a password, any user name)"]


def test_becomes_healthy(appliance):
    appliance.wait_until(lambda: appliance.container.health() == "healthy",
                         "docker's health check to say healthy", TENSORBOARD_WITHIN_SECS)


def test_evaluates_the_first_checkpoint(appliance):
    appliance.wait_until(appliance.milestones.first_eval_written.is_set,
                         "a line in default/eval/results.jsonl", FIRST_EVAL_WITHIN_SECS)
    record("docker run -> first eval result", f"{appliance.milestones.seconds['first eval']:.1f} s")
    first = read_results(appliance.run_dir / "eval")[0]
    assert 0.0 <= first["precision_at_1"] <= 1.0


def test_writes_the_run_into_its_folder_of_the_volume(appliance):
    run_dir = appliance.run_dir
    appliance.wait_until(lambda: list(run_dir.glob("eval/events.out.tfevents.*")),
                         "an eval event file", FIRST_EVAL_WITHIN_SECS)
    assert run_dir == appliance.train_dir / TRAINING_RUN
    assert (run_dir / "checkpoint").is_file()
    assert list(run_dir.glob("model.ckpt-*.index"))
    assert list(run_dir.glob("events.out.tfevents.*")), "no training event file"
    assert read_results(run_dir / "eval")


def test_tensorboard_shows_the_run_beside_its_eval(appliance):
    appliance.wait_until(lambda: EVAL_RUN in appliance.api.runs(), "TensorBoard's run list",
                         FIRST_EVAL_WITHIN_SECS)
    assert {TRAINING_RUN, EVAL_RUN} <= set(appliance.api.runs())


def test_supervisord_restarts_the_trainer_after_kill_9(appliance):
    kill = appliance.kill
    assert kill["step"] > kill["checkpoint"], f"killed at a checkpoint, not between two: {kill}"
    line = wait_for_line(appliance.container, log_lines.RESUMED, 120,
                         f"the trainer to resume from model.ckpt-{kill['checkpoint']}",
                         step=kill["checkpoint"])
    logs = appliance.container.logs()
    assert "exited: train (terminated by SIGKILL; not expected)" in logs[:line.start()]
    spawned = [match["pid"] for match in log_lines.find(log_lines.SPAWNED, logs, program="train")]
    assert len(spawned) == 2 and spawned[0] == kill["wrapper"], spawned


def test_trains_to_max_steps_and_stays_healthy(appliance):
    appliance.wait_until(appliance.finished, f"eval of the step {MAX_STEPS} checkpoint",
                         FINISHED_WITHIN_SECS)
    assert (appliance.run_dir / f"model.ckpt-{MAX_STEPS}.index").is_file()
    appliance.wait_until(lambda: appliance.container.health() == "healthy",
                         "healthy once training is done", FINISHED_WITHIN_SECS)


def test_eval_keeps_running_after_max_steps(appliance):
    appliance.wait_until(appliance.finished, "a finished run", FINISHED_WITHIN_SECS)
    appliance.wait_until(lambda: log_lines.EVAL_IDLE.search(appliance.container.logs()),
                         "eval to say every run is evaluated", FINISHED_WITHIN_SECS)
    status = appliance.supervisorctl("status")
    states = program_states(status)
    assert (states["eval"], states["train"]) == ("RUNNING", "EXITED"), status


@pytest.mark.parametrize("run, kind, tag", CURVES, ids=[f"{run} {tag}" for run, kind, tag in CURVES])
def test_no_step_repeated_or_going_back_after_the_kill(appliance, run, kind, tag):
    appliance.wait_until(appliance.finished, "TensorBoard to show the finished run",
                         FINISHED_WITHIN_SECS)
    steps = appliance.api.steps(kind, run, tag)
    assert steps, f"TensorBoard shows no {kind} {tag!r} of run {run}"
    assert going_back({(kind, tag): steps}) == []
    if run == TRAINING_RUN and kind != "text":  # text (the config) is written at each start only
        assert steps[-1] == LAST_SUMMARY


def test_the_appliance_s_arguments_reach_every_program(appliance):
    """`--set` after the image's name: train saves every 100 steps and eval evaluates 400
    examples, as they say, over the variables' 50 and 500 (TensorBoard's line names the URL
    given: the test of that line)."""
    appliance.wait_until(appliance.finished, "a finished run", FINISHED_WITHIN_SECS)
    logs = appliance.container.logs()
    saved = log_lines.steps(logs, log_lines.SAVED)
    assert saved and all(step % CHECKPOINT_EVERY == 0 for step in saved), saved
    evaluated = [line for line in logs.splitlines() if log_lines.PRECISION.match(line)]
    assert evaluated and all(line.endswith(f"; {EVAL_EXAMPLES} examples)")
                             for line in evaluated), evaluated


# -- one program a container, and a bad key -----------------------------------------------------

# The image's check every second, its first verdict at once: one failure is `unhealthy` (retries
# 1), but failures within the start period (while TensorBoard starts) do not count.
QUICK_HEALTH = ("--health-interval", "1s", "--health-retries", "1",
                "--health-start-period", "120s", "--health-timeout", "30s")
HEALTH_VERDICT_WITHIN_SECS = 150


@pytest.mark.parametrize("program", ["train", "eval", "tensorboard"])
def test_a_container_of_one_program_is_healthy(containers, program):
    """`docker run -d ... cifar10-appliance PROGRAM`: no supervisord, and the image's health check
    answers for that program (TensorBoard: once it answers)."""
    container = containers.run(program, env=ENDLESS_RUN, options=QUICK_HEALTH)
    wait_on_container(container, lambda: container.health() in ("healthy", "unhealthy"),
                      HEALTH_VERDICT_WITHIN_SECS, "the health check's verdict")
    checks = container.state()["Health"]["Log"]
    assert container.health() == "healthy", checks[-1]["Output"]
    assert checks[-1]["Output"].startswith(f"healthy: this container runs {program} alone")
    if program == "tensorboard":  # TensorBoard's line without a URL given: the README's -p
        lines = [line for line in container.logs().splitlines() if "http://" in line]
        assert lines == ["open http://localhost:6006 (TensorBoard on the container's port 6006, "
                         "as -p 127.0.0.1:6006:6006 publishes it; for another host port set "
                         "CIFAR10_TENSORBOARD_URL; no password: tensorboard.password sets one)"]


def test_a_bad_key_given_to_the_appliance_stops_it_before_it_starts(containers):
    container = containers.run("--set", "train.batch_sise=64", env=SMALL_RUN)
    assert container.wait(timeout=120) == 2
    assert container.logs().splitlines() == [
        "config error: --set train.batch_sise=64: unknown key 'train.batch_sise' (did you mean "
        "'train.batch_size'?)"]
