"""A bad configuration stops the container at once: exit 2, and a message naming the key."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.container

EXIT_BAD_CONFIG = 2
WITHIN_SECS = 120

CASES = {
    "typo in the mounted config file": dict(
        config_file="train:\n  max_stpes: 300\n", env={}, names="train.max_stpes"),
    "unknown key in an override": dict(
        config_file=None, env={"CIFAR10_TRAIN_MAX_STPES": "300"}, names="CIFAR10_TRAIN_MAX_STPES"),
    "bad value in an override": dict(
        config_file=None, env={"CIFAR10_TRAIN_BATCH_SIZE": "zero"}, names="train.batch_size"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_config_exits_2_naming_the_key(case, containers, tmp_path):
    volumes = {}
    if case["config_file"] is not None:
        config = tmp_path / "config.yaml"
        config.write_text(case["config_file"])
        volumes[config] = "/etc/cifar10/config.yaml:ro"
    container = containers.run(env={"CIFAR10_DATA_SOURCE": "synthetic", **case["env"]},
                               volumes=volumes)
    exit_code = container.wait(timeout=WITHIN_SECS)
    logs = container.logs()
    assert exit_code == EXIT_BAD_CONFIG, logs
    assert case["names"] in logs
