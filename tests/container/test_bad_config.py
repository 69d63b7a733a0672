"""A bad configuration stops the container at once: exit 2, and a message naming the key. The
config file is mounted over the defaults, as the README says."""
from __future__ import annotations

import pytest

from app.exit_codes import ExitCode
from tests.harness.faults.bad_configs import named

pytestmark = pytest.mark.container

WITHIN_SECS = 120
# A typo in the mounted file, an unknown key in an override, a bad value in an override.
CASES = named("misspelt key", "misspelt override", "maybe as a boolean override")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_config_exits_2_naming_the_key(case, containers, tmp_path):
    volumes = {}
    if case.file is not None:
        config = tmp_path / "config.yaml"
        config.write_text(case.file)
        volumes[config] = "/etc/cifar10/config.yaml:ro"
    container = containers.run(env={"CIFAR10_DATA_SOURCE": "synthetic", **case.env},
                               volumes=volumes)
    exit_code = container.wait(timeout=WITHIN_SECS)
    logs = container.logs()
    assert exit_code == ExitCode.BAD_INPUT, logs
    assert case.names in logs
