"""A bad configuration file mounted over the defaults, as the README says
(`-v "$PWD/my.yaml:/etc/cifar10/config.yaml:ro"`), stops the container at once: exit 2, and a
message naming the key. (Every other bad config of the table goes through the image's entrypoint
in tests/faults/test_container_security.py.)"""
from __future__ import annotations

import pytest

from app.exit_codes import ExitCode
from tests.harness.faults.bad_configs import named

pytestmark = pytest.mark.container

WITHIN_SECS = 120
[MISSPELT_KEY] = named("misspelt key")


def test_bad_config_file_exits_2_naming_the_key(containers, tmp_path):
    config = tmp_path / "my.yaml"
    config.write_text(MISSPELT_KEY.file)
    container = containers.run(env={"CIFAR10_DATA_SOURCE": "synthetic"},
                               volumes={config: "/etc/cifar10/config.yaml:ro"})
    exit_code = container.wait(timeout=WITHIN_SECS)
    logs = container.logs()
    assert exit_code == ExitCode.BAD_INPUT, logs
    assert MISSPELT_KEY.names in logs
    assert "/etc/cifar10/config.yaml" in logs
