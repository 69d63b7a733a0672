"""What podman adds to the Docker tests: the image users build, run rootful by podman (runc,
netavark publishing the port on 127.0.0.1, the mounted folder), its HEALTHCHECK as podman reads it
and runs it (`podman healthcheck run`). Everything else about the image and the appliance is
checked on the real Docker engine. (The Dockerfile built by buildah, `podman build`, is
bench.faults' container scenario: a second build here would cost CI two minutes.)"""
from __future__ import annotations

import pytest

from tests.harness.container_runs import SMALL_RUN, owned_train_dir, run_folder, wait_on_container
from tests.harness.containers import TrackedContainers
from tests.harness.ports import answers_http, free_port

pytestmark = pytest.mark.container

TENSORBOARD_WITHIN_SECS = 240
CHECKPOINT_WITHIN_SECS = 300


@pytest.fixture(scope="module")
def appliance(podman, podman_image, tmp_path_factory):
    train_dir = owned_train_dir(tmp_path_factory.mktemp("podman"))
    port = free_port()
    with TrackedContainers(podman, podman_image) as tracked:
        container = tracked.run(env=SMALL_RUN, ports={port: 6006},
                                volumes={train_dir: "/cifar10_train"})
        yield container, port, train_dir


def test_podman_reads_the_health_check(podman, podman_image):
    assert podman.inspect("image", podman_image)["Healthcheck"]["Test"] == [
        "CMD", "/app/entrypoint.sh", "health"]


def test_tensorboard_answers_on_the_published_port(appliance):
    container, port, _ = appliance
    wait_on_container(container, lambda: answers_http(port), TENSORBOARD_WITHIN_SECS,
                      "TensorBoard answering")


def test_podman_healthcheck_run_says_healthy(appliance):
    container, port, _ = appliance
    wait_on_container(container, lambda: container.healthcheck().returncode == 0,
                      TENSORBOARD_WITHIN_SECS, "healthy (podman healthcheck run)")


def test_trains_into_the_mounted_folder(appliance):
    container, _, train_dir = appliance
    wait_on_container(container, lambda: (run_folder(train_dir) / "checkpoint").is_file(),
                      CHECKPOINT_WITHIN_SECS, "a checkpoint in the mounted train_dir")
