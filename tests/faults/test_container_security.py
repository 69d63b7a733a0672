"""The image, as the tests' podman builds and runs it: who runs, what listens, who may steer
supervisord, what the layers keep, and bad configs through its entrypoint."""
from __future__ import annotations

import pytest

from tests.harness.container_runs import root_owned_volume
from tests.harness.faults import container_checks as checks
from tests.harness.faults.bad_configs import BAD_CONFIGS, refuses_bad_config_in_container
from tests.harness.image import host_ca_bundle
from tests.harness.podman import TrackedContainers

pytestmark = [pytest.mark.faults, pytest.mark.container]

VOLUMES = {
    "no volume": lambda folder: {},
    # What `docker run -v DIR:/cifar10_train` makes of a missing DIR: an empty folder of root's.
    "root-owned volume": lambda folder: {root_owned_volume(folder): "/cifar10_train"},
}


@pytest.fixture(scope="module", params=VOLUMES.keys())
def appliance(request, podman, image, tmp_path_factory):
    """The appliance running its three programs (TensorBoard answers), with and without a
    mounted train_dir."""
    volumes = VOLUMES[request.param](tmp_path_factory.mktemp("volume"))
    with TrackedContainers(podman, image) as tracked:
        yield checks.running_appliance(podman, tracked, volumes)


def test_every_process_runs_as_non_root(podman, appliance):
    assert checks.process_users(podman, appliance)
    assert checks.processes_as_root(podman, appliance) == []


def test_the_only_listening_tcp_port_is_6006(podman, appliance):
    assert checks.listening_ports(podman, appliance) == {checks.APPLIANCE_PORT}


def test_supervisord_socket_is_closed_to_other_users(podman, appliance):
    assert checks.socket_open_to_others(podman, appliance) is None


def test_the_ca_secret_leaves_no_trace_in_any_layer(podman, image):
    _, traces = checks.ca_secret_traces(podman, image, host_ca_bundle())
    assert traces == []


def test_no_credentials_or_tokens_in_the_image(podman, image):
    assert checks.credential_traces(podman, image) == []


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c.name for c in BAD_CONFIGS])
def test_bad_config_through_the_container_entrypoint(case, podman, image, tmp_path):
    assert refuses_bad_config_in_container(podman, image, case, tmp_path / "case") is None
