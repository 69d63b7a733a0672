"""A GPU is checked, not assumed, on the real Docker engine of a machine without one.

Given GPUs it cannot use (NVIDIA_VISIBLE_DEVICES=all, which the NVIDIA Container Toolkit sets for
`--gpus all`, and no GPU: here the CPU flavor's TensorFlow, which has no CUDA at all), the
appliance does not train on the CPU a hundred times slower: train and eval each exit 2 saying why,
supervisord restarts neither, and the image's health check reports it. Without the toolkit,
`docker run --gpus all` and the GPU compose file stop at once, with the messages that
docs/running.md quotes.
"""
from __future__ import annotations

import pytest

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.container_runs import ENDLESS_RUN, wait_on_container
from tests.harness.containers import TrackedContainers
from tests.harness.environment import REPO_ROOT
from tests.harness.image import CPU_IMAGE

pytestmark = pytest.mark.container

GIVEN = "the container was given GPUs (NVIDIA_VISIBLE_DEVICES=all), but TensorFlow sees none"
WITHIN_SECS = 180
HEALTH_AT_ONCE = ("--health-interval", "2s", "--health-start-period", "1s",
                  "--health-retries", "1")
GPU_IMAGE = "cifar10-appliance:latest"   # what the GPU compose file runs


@pytest.fixture(scope="module")
def given_gpus(docker, image):
    """The appliance started with NVIDIA_VISIBLE_DEVICES=all, once train and eval have exited."""
    with TrackedContainers(docker, image) as tracked:
        container = tracked.run(env={**ENDLESS_RUN, "NVIDIA_VISIBLE_DEVICES": "all"},
                                options=HEALTH_AT_ONCE)
        for program in ("train", "eval"):
            wait_on_container(container, lambda: log_lines.find(
                log_lines.EXITED, container.logs(), program=program), WITHIN_SECS,
                f"{program} to exit")
        yield container


@pytest.mark.parametrize("program", ["train", "eval"])
def test_exits_2_saying_the_gpus_are_unusable(given_gpus, program):
    logs = given_gpus.logs()
    errors = [line for line in logs.splitlines() if line.startswith(f"{program} | error: ")]
    assert errors and GIVEN in errors[0], logs[-4000:]
    assert [match["how"] for match in log_lines.find(log_lines.EXITED, logs, program=program)] \
        == [f"exit status {ExitCode.BAD_INPUT}; expected"]


@pytest.mark.parametrize("program", ["train", "eval"])
def test_is_not_restarted(given_gpus, program):
    status = given_gpus.exec("/app/entrypoint.sh", "supervisorctl", "status",
                             f"appliance:{program}").stdout
    assert status.split()[1] == "EXITED", status
    assert len(log_lines.find(log_lines.SPAWNED, given_gpus.logs(), program=program)) == 1


def test_the_health_check_reports_it(given_gpus):
    wait_on_container(given_gpus, lambda: given_gpus.health() == "unhealthy",
                      WITHIN_SECS, "docker's health check to say unhealthy")
    [*_, last] = given_gpus.state()["Health"]["Log"]
    assert "unhealthy: train: EXITED with status 2" in last["Output"], last
    assert "GPUs given that TensorFlow cannot use" in last["Output"], last


def test_docker_run_gpus_all_without_the_toolkit_stops_at_once(docker, image):
    result = docker("run", "--rm", "--gpus", "all", image, "check-config", check=False)
    message = 'could not select device driver "" with capabilities: [[gpu]]'
    assert result.returncode == 125 and message in result.stderr, result.stderr
    assert message in documented()


def test_the_gpu_compose_file_without_the_toolkit_stops_at_once(docker, checkout, image):
    # The session's CPU image stands in for the GPU flavor, under the one name both are built as
    # (the GPU flavor is not built here): the GPU file's `up --no-build` runs it.
    assert CPU_IMAGE == GPU_IMAGE
    project = ["compose", "--project-name", "cifar10-gpu-check"]
    try:
        result = docker(*project, "up", "--no-build", "--detach", "appliance", cwd=checkout,
                        timeout=180, check=False)
    finally:
        docker(*project, "down", "--volumes", "--timeout", "0", cwd=checkout, check=False)
    message = 'could not select device driver "nvidia" with capabilities: [[gpu]]'
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert message in documented()


def documented() -> str:
    """What the README and docs/ say, where the messages a user sees are quoted."""
    return "\n".join(path.read_text() for path in [REPO_ROOT / "README.md",
                                                     *sorted((REPO_ROOT / "docs").glob("*.md"))])
