"""The README's commands on a machine without a GPU, typed as a user types them, from a clean clone,
on the real Docker engine with Docker Compose v2:

    mkdir -p cifar10_train
    docker compose -f docker/compose.yaml -f docker/compose.cpu.yaml up --build   (in the foreground)
    docker compose -f docker/compose.yaml -f docker/compose.cpu.yaml stop         (another shell)
    docker compose -f docker/compose.yaml -f docker/compose.cpu.yaml up --build   (resumes)

(the files the README's .env line names).

A short synthetic run is asked for as the README says, by variables of the shell. The session's
image is this command's build (the image_build fixture runs it first), so `up --build` here
finds every layer built. One run for the whole module; each test checks one thing a user sees.
"""
from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.exit_codes import ExitCode
from app.volume.results import read_results
from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed
from tests.harness.container_runs import (DOCKER_STOP_GRACE_SECS, HOST_OWNER,
                                          wait_on_container)
from tests.harness.containers import Container
from tests.harness.docker_engine import DockerEngine
from tests.harness.figures import record
from tests.harness.image import COMPOSE_CPU_FILES, build_steps, compose_shell
from tests.harness.ports import answers_http, free_port
from tests.harness.waiting import GaveUp, wait_until

pytestmark = pytest.mark.container

README_PORT = 6006
# What a user would set in their shell to try it in a few minutes (docker/compose.yaml passes
# these on): the synthetic set, a checkpoint every 50 steps, eval looking every 5 s over 1,000
# test images. (Batch 32 at the tutorial's learning rate was seen to diverge: the default 128.)
SHELL = {"CIFAR10_DATA_SOURCE": "synthetic", "CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS": "50",
         "CIFAR10_EVAL_EVERY_SECS": "5", "CIFAR10_EVAL_NUM_EXAMPLES": "1000"}
RUN = "default"  # paths.run's default: the run's folder in ./cifar10_train
STARTED_WITHIN_SECS = 300
TENSORBOARD_WITHIN_SECS = 180
HEALTHY_WITHIN_SECS = 240   # the image's own health check: every 30 s
FIRST_EVAL_WITHIN_SECS = 420
RESUMED_WITHIN_SECS = 240


@dataclass
class ComposeRun:
    docker: DockerEngine
    checkout: Path
    shell: dict
    port: int
    output: Path
    up: subprocess.Popen | None = None
    started_at: float = 0.0
    stop: dict = field(default_factory=dict)   # what `docker compose stop` did, once done

    @property
    def train_dir(self) -> Path:
        return self.checkout / "cifar10_train"

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return self.docker("compose", *COMPOSE_CPU_FILES, *args, cwd=self.checkout,
                           env=self.shell, timeout=timeout, check=False)

    def start_up(self) -> None:
        """`up --build` in the foreground, as typed in a terminal."""
        self.started_at = time.monotonic()
        self.up = self.docker.popen("compose", *COMPOSE_CPU_FILES, "up", "--build",
                                    output=self.output, cwd=self.checkout, env=self.shell)

    def container(self) -> Container:
        """The appliance's container, once `up` has created it."""
        def created() -> str:
            if self.up.poll() is not None:
                raise GaveUp(f"`compose up` exited {self.up.returncode}")
            return self.compose("ps", "--all", "--quiet", "appliance").stdout.strip()
        try:
            name = wait_until(created, STARTED_WITHIN_SECS, "the appliance's container", 1)
        except GaveUp as gave_up:
            pytest.fail(f"{gave_up}; its output ends:\n{self.up_output()[-4000:]}")
        return Container(self.docker, name, self.started_at)

    def up_output(self) -> str:
        return self.output.read_text(errors="replace")

    def wait(self, condition, what: str, timeout: float):
        """wait_on_container for the appliance's container, while it runs."""
        __tracebackhide__ = True
        return wait_on_container(self.container(), condition, timeout, what)

    def stopped(self) -> dict:
        """`docker compose stop` once, mid-training: how long it took, and what it left."""
        if not self.stop:
            self.wait(lambda: newest_listed(self.train_dir / RUN), "a first checkpoint",
                      FIRST_EVAL_WITHIN_SECS)
            container = self.container()
            started = time.monotonic()
            result = self.compose("stop")
            seconds = time.monotonic() - started
            self.up.wait(timeout=60)
            self.stop = {"seconds": seconds, "result": result, "logs": container.logs(),
                         "exit_code": container.state()["ExitCode"],
                         "up_exit_code": self.up.returncode}
        return self.stop


def tensorboard_port() -> tuple[int, dict]:
    """The README's 6006 when this host has it free, else another one given as the compose file
    offers (TENSORBOARD_PORT): other programs on a shared machine may hold 6006."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", README_PORT))
            return README_PORT, {}
        except OSError:
            port = free_port()
            return port, {"TENSORBOARD_PORT": str(port)}


@pytest.fixture(scope="module")
def compose_run(docker, checkout, image, tmp_path_factory):
    train_dir = checkout / "cifar10_train"
    train_dir.mkdir()                        # mkdir -p cifar10_train, as the user
    subprocess.run(["chown", f"{HOST_OWNER}:{HOST_OWNER}", train_dir], check=True)
    port, port_variables = tensorboard_port()
    shell = {**SHELL, **port_variables, **compose_shell()}
    run = ComposeRun(docker, checkout, shell, port,
                     tmp_path_factory.mktemp("compose") / "up.log")
    run.start_up()
    try:
        yield run
    finally:
        if run.up.poll() is None:
            run.up.terminate()
        run.compose("down", "--volumes", "--timeout", "0")
        try:
            run.up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.up.kill()
            run.up.wait()


def test_up_builds_nothing_the_session_build_did_not(compose_run):
    compose_run.container()
    steps = build_steps(compose_run.up_output())
    built = [step for step, cached in steps if not cached and not step.startswith("FROM ")]
    assert steps and not built, f"`up --build` built again: {built}"


def test_tensorboard_answers_on_the_port(compose_run):
    compose_run.wait(lambda: answers_http(compose_run.port), "TensorBoard answering",
                     TENSORBOARD_WITHIN_SECS)
    record(f"compose up -> TensorBoard answers (port {compose_run.port})",
           f"{time.monotonic() - compose_run.started_at:.1f} s")


def test_published_on_loopback_only(compose_run):
    container = compose_run.container()
    wait_until(container.is_running, STARTED_WITHIN_SECS, "the container to run", 1)
    bindings = compose_run.docker.inspect("container", container.name)["HostConfig"][
        "PortBindings"]["6006/tcp"]
    assert [binding["HostIp"] for binding in bindings] == ["127.0.0.1"]
    for address in host_addresses():
        with socket.socket() as probe:
            probe.settimeout(3)
            assert probe.connect_ex((address, compose_run.port)) != 0, \
                f"TensorBoard answers on {address}:{compose_run.port}"


def host_addresses() -> list[str]:
    """This host's IPv4 addresses other than loopback (where others would reach it)."""
    listing = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in listing.splitlines()
            if " docker0 " not in line and " br-" not in line]


def test_becomes_healthy(compose_run):
    container = compose_run.container()
    compose_run.wait(lambda: container.health() == "healthy",
                     "docker's health check (every 30 s) to say healthy", HEALTHY_WITHIN_SECS)


def test_evaluates_the_first_checkpoint(compose_run):
    results = compose_run.train_dir / RUN / "eval"
    compose_run.wait(lambda: read_results(results), "a line in default/eval/results.jsonl",
                     FIRST_EVAL_WITHIN_SECS)
    record("compose up -> first eval result", f"{time.monotonic() - compose_run.started_at:.1f} s")
    assert 0.0 <= read_results(results)[0]["precision_at_1"] <= 1.0


def test_files_belong_to_the_folder_owner(compose_run):
    compose_run.wait(lambda: read_results(compose_run.train_dir / RUN / "eval"),
                     "an evaluated checkpoint", FIRST_EVAL_WITHIN_SECS)
    paths = list(compose_run.train_dir.rglob("*"))
    assert any(path.name.startswith("model.ckpt-") for path in paths)
    not_owned = [f"{path} ({path.stat().st_uid}:{path.stat().st_gid})" for path in paths
                 if (path.stat().st_uid, path.stat().st_gid) != (HOST_OWNER, HOST_OWNER)]
    assert not not_owned, f"not owned by {HOST_OWNER}:{HOST_OWNER}: {not_owned}"


def test_stop_saves_a_checkpoint_at_the_step_reached(compose_run):
    stop = compose_run.stopped()
    assert stop["result"].returncode == 0, stop["result"].stderr
    stopped = log_lines.STOPPED_ON_REQUEST.search(stop["logs"])
    assert stopped, f"the trainer did not report its stop:\n{stop['logs'][-6000:]}"
    assert newest_listed(compose_run.train_dir / RUN) == int(stopped["step"])


def test_stop_ends_within_the_grace_period(compose_run):
    stop = compose_run.stopped()
    record("docker compose stop (mid-training)", f"{stop['seconds']:.1f} s")
    assert stop["exit_code"] == ExitCode.DONE, f"exit code {stop['exit_code']} (137: killed)"
    # Docker's default grace (10 s), well within the compose file's 30 s.
    assert stop["seconds"] < DOCKER_STOP_GRACE_SECS


def test_up_again_resumes_from_the_last_checkpoint(compose_run):
    step = log_lines.STOPPED_ON_REQUEST.search(compose_run.stopped()["logs"])["step"]
    compose_run.start_up()
    container = compose_run.container()
    wait_until(container.is_running, STARTED_WITHIN_SECS, "the container to start again", 1)
    compose_run.wait(lambda: log_lines.find(log_lines.RESUMED, container.logs(), step=step),
                     f"the trainer to resume from model.ckpt-{step}", RESUMED_WITHIN_SECS)
