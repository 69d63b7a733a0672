"""The README's command as a user types it, through the docker CLI.

There is no Docker engine here: the docker CLI talks to podman's Docker-compatible API
(`podman system service`), which runs the container in the tests' own podman. Only `--gpus all`
is left out, for want of a GPU.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from tests.harness.container_runs import SMALL_RUN, owned_train_dir
from tests.harness.ports import answers_http, free_port
from tests.harness.waiting import GaveUp, wait_until

pytestmark = pytest.mark.container

SERVICE_START_SECS = 30
TENSORBOARD_WITHIN_SECS = 180


@pytest.fixture(scope="module")
def docker(podman):
    """Runs the docker CLI against a podman API service on a socket in the tests' folder."""
    if not shutil.which("docker"):
        pytest.skip("the docker CLI is missing")
    socket = podman.folder / "docker-api.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                               env=podman.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    def started() -> bool:
        if service.poll() is not None:
            raise GaveUp(f"podman system service exited {service.returncode}")
        return socket.exists()

    try:
        wait_until(started, SERVICE_START_SECS, "podman system service to listen", interval=0.2)
    except GaveUp as gave_up:
        service.kill()
        pytest.fail(f"{gave_up}: {service.stderr.read()}")
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}",
           "DOCKER_CONFIG": str(podman.folder / "docker-config")}

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    try:
        yield run
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def test_readme_docker_run_serves_tensorboard(docker, image, tmp_path):
    train_dir = owned_train_dir(tmp_path)
    port = free_port()
    name = f"cifar10-test-docker-{uuid.uuid4().hex[:8]}"
    environment = [option for key, value in SMALL_RUN.items() for option in ("-e", f"{key}={value}")]
    try:
        started = docker("run", "-d", "--name", name, *environment,
                         "-p", f"{port}:6006", "-v", f"{train_dir}:/cifar10_train", image)
        assert started.returncode == 0, started.stderr
        try:
            wait_until(lambda: answers_http(port), TENSORBOARD_WITHIN_SECS,
                       f"TensorBoard to answer on port {port}", interval=1)
        except GaveUp as gave_up:
            pytest.fail(f"{gave_up}:\n{docker('logs', name).stdout[-6000:]}")
    finally:
        docker("rm", "--force", "--volumes", name)
