"""The image as users build (BuildKit) and run it (the real Docker engine): who runs, what
listens, who may steer supervisord, what the layers keep, and every bad config of the table
through its entrypoint."""
from __future__ import annotations

import pytest

from app.exit_codes import ExitCode
from tests.harness.container_runs import root_owned_volume
from tests.harness.containers import TrackedContainers
from tests.harness.faults import container_checks as checks
from tests.harness.faults.bad_configs import BAD_CONFIGS, run_bad_config_in_container
from tests.harness.image import host_ca_bundle

pytestmark = [pytest.mark.faults, pytest.mark.container]

VOLUMES = {
    "no volume": lambda folder: {},
    # What `docker run -v DIR:/cifar10_train` makes of a missing DIR: an empty folder of root's.
    "root-owned volume": lambda folder: {root_owned_volume(folder): "/cifar10_train"},
}


@pytest.fixture(scope="module", params=VOLUMES.keys())
def appliance(request, docker, image, tmp_path_factory):
    """The appliance running its three programs (TensorBoard answers), with and without a
    mounted train_dir."""
    volumes = VOLUMES[request.param](tmp_path_factory.mktemp("volume"))
    with TrackedContainers(docker, image) as tracked:
        yield checks.running_appliance(docker, tracked, volumes)


def test_every_process_runs_as_non_root(docker, appliance):
    users = docker.processes(appliance.name)
    assert users
    assert [command for user, command in users if user in ("root", "0")] == []


def test_the_only_listening_tcp_port_is_6006(docker, appliance):
    assert checks.listening_ports(docker, appliance) == {checks.APPLIANCE_PORT}


def test_supervisord_socket_is_closed_to_other_users(docker, appliance):
    attempt = checks.socket_attempt(docker, appliance)
    assert attempt.returncode != 0, f"uid 65534 talked to supervisord: {attempt.stdout.strip()}"
    assert checks.permission_denied(attempt), attempt.stderr.strip()[-300:]


def test_the_ca_secret_leaves_no_trace_in_any_layer(docker, image):
    _, traces = checks.ca_secret_traces(docker, image, host_ca_bundle())
    assert traces == []


def test_no_credentials_or_tokens_in_the_image(docker, image):
    assert checks.credential_traces(docker, image) == []


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c.name for c in BAD_CONFIGS])
def test_bad_config_through_the_container_entrypoint(case, docker, image, tmp_path):
    run = run_bad_config_in_container(docker, image, case, tmp_path / "case")
    assert run.exit_code == ExitCode.BAD_INPUT, run.output[-300:]
    assert case.names in run.output, run.output[-300:]
    assert run.left_running == []  # `run --rm` returns once the container is gone
    assert run.written == []
