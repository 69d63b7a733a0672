"""The Dockerfile and compose files, read without a container engine (fast; no `container` mark;
tests/container/test_compose.py runs them)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.environment import REPO_ROOT
from tests.harness.image import COMPOSE_CPU_FILES


def hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")  # a venv's, without activating it
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint is missing: pip install -r requirements-dev.txt")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run([hadolint(), "--no-color", "Dockerfile"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: `!reset` drops what the files before set."""


ComposeLoader.add_constructor("!reset", lambda loader, node: RESET)
RESET = object()


def compose_services(name: str) -> dict:
    return yaml.load((REPO_ROOT / "docker" / name).read_text(), ComposeLoader)["services"]


def test_compose_builds_this_checkout_and_reserves_the_gpu():
    compose_file = REPO_ROOT / "docker" / "compose.yaml"
    service = compose_services("compose.yaml")["appliance"]
    context = (compose_file.parent / service["build"]["context"]).resolve()
    assert (context / service["build"].get("dockerfile", "Dockerfile")) == REPO_ROOT / "Dockerfile"
    # TensorBoard has no login: published on the loopback address unless asked otherwise.
    assert "${TENSORBOARD_ADDRESS:-127.0.0.1}:${TENSORBOARD_PORT:-6006}:6006" in service["ports"]
    assert "../cifar10_train:/cifar10_train" in service["volumes"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]} in devices


def test_the_cpu_file_builds_the_cpu_flavor_without_a_gpu_for_every_service():
    gpu, cpu = compose_services("compose.yaml"), compose_services("compose.cpu.yaml")
    assert set(cpu) == set(gpu)
    for name, service in cpu.items():
        assert service["build"]["args"]["TF_PACKAGE"] == "tensorflow-cpu", name
        assert "image" not in service, name  # the GPU flavor's name: one for both
        if "deploy" in gpu[name]:  # a GPU reservation, which the CPU file drops
            assert service["deploy"] is RESET, name
    assert [name for name in gpu if "deploy" in gpu[name]] == ["appliance", "chief", "worker"]


def test_the_readme_gives_the_cpu_command_the_container_tests_run():
    files = ":".join(COMPOSE_CPU_FILES[1::2])
    command = f"echo COMPOSE_FILE={files} >> .env && docker compose up --build"
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"\n{command}\n" in readme  # as a command of its own, in the first code block
