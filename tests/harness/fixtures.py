"""The fixtures every test folder shares, defined once (a pytest plugin: the root conftest names
it in `pytest_plugins`, so one test session has one of each, however many folders use it).

Session:  trained_stack  the three programs natively: trained, evaluated, TensorBoard up behind
                         a password
          evaluated_run  a short run trained, evaluated and reported, for the tests that read it
          docker         the real Docker engine of the tests' own (dockerd, its state in one folder)
          checkout       a copy of this checkout as a clean clone holds it
          image_build    the README's CPU command's build there (Compose, BuildKit in the engine),
                         on a Debian base from debootstrap imported as debian:bookworm-slim, the
                         host's CA bundle as the ca_bundle secret
          image          that image's name (cifar10-appliance:latest, either flavor's)
          podman         an isolated podman (own storage, config and networks under one folder)
          podman_image   that image, loaded into podman
Each test: containers    starts containers from `image` on the Docker engine and removes every
                         one of them after

At the end of the session each engine is stopped and its folder deleted, and the iptables
chains and rules, bridges and host paths it added are taken away again. pytest's summary ends
with the figures the container tests recorded and how many times each engine built the image.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness import debian_base, figures, image as appliance_image
from tests.harness.containers import TrackedContainers
from tests.harness.docker_engine import DockerEngine, missing_tools
from tests.harness.evaluated_run import EvaluatedRun, train_evaluate_and_report
from tests.harness.native_stack import TRAINED_STACK_PASSWORD, NativeStack, start_trained_stack
from tests.harness.podman import HostFootprint, IsolatedPodman


@pytest.fixture(scope="session")
def trained_stack(tmp_path_factory) -> NativeStack:
    """A stack that has trained to max_steps and evaluated that checkpoint (eval watching on,
    idle); TensorBoard is up behind a password, as for a user who publishes its port."""
    stack = start_trained_stack(tmp_path_factory.mktemp("trained_stack"),
                                password=TRAINED_STACK_PASSWORD)
    print("\ntrained stack: " + ", ".join(f"{name} after {secs:.1f} s"
                                          for name, secs in stack.timings.items()))
    yield stack
    stack.stop()


def _skip_unless_root(missing: list[str], install: str) -> None:
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run {install} as root")
    if os.geteuid() != 0:
        pytest.skip("the container tests run the engines as root")


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory) -> EvaluatedRun:
    return train_evaluate_and_report(tmp_path_factory.mktemp("evaluated"))


@pytest.fixture(scope="session")
def docker():
    _skip_unless_root(missing_tools(), ".ci/install-system-deps.sh")
    engine = DockerEngine(Path(tempfile.mkdtemp(prefix="cifar10-docker-")))
    leftovers = {}
    try:
        figures.record("Docker engine: start to answering", f"{engine.start():.1f} s")
        yield engine
        leftovers = {kind: ids for kind, ids in engine.leftovers().items() if ids}
    finally:
        removed = engine.stop()
        print(f"\nDocker engine stopped; removed {', '.join(removed) or 'nothing else'}")
    assert not leftovers, f"the tests left behind {leftovers}"


@pytest.fixture(scope="session")
def checkout(tmp_path_factory) -> Path:
    return appliance_image.clean_checkout(tmp_path_factory.mktemp("clone") / "cifar10-appliance")


@pytest.fixture(scope="session")
def image_build(docker, checkout, tmp_path_factory) -> appliance_image.Build:
    """The CPU flavor, built once a session as the README's CPU command builds it."""
    started = time.monotonic()
    how = "cached debootstrap" if debian_base.cached_tarball() else "debootstrap"
    appliance_image.import_debian_base_into_docker(docker, tmp_path_factory.mktemp("debian"))
    figures.record(f"Debian base image ({how}, then docker import)",
                   f"{time.monotonic() - started:.0f} s")
    return appliance_image.compose_build(docker, checkout)


@pytest.fixture(scope="session")
def image(image_build) -> str:
    return appliance_image.CPU_IMAGE


@pytest.fixture
def containers(docker, image):
    with TrackedContainers(docker, image) as tracked:
        yield tracked


@pytest.fixture(scope="session")
def podman():
    _skip_unless_root([tool for tool in ("podman", "runc", "debootstrap", "nft")
                       if not shutil.which(tool)], ".ci/install-system-deps.sh")
    footprint = HostFootprint.now()
    engine = IsolatedPodman(Path(tempfile.mkdtemp(prefix="cifar10-podman-")))
    leftovers = {}
    try:
        yield engine
        leftovers = {kind: ids for kind, ids in engine.leftovers().items() if ids}
    finally:
        engine.reset()
        removed = footprint.restore()
        print(f"\npodman cleanup: store reset; removed {', '.join(removed) or 'nothing else'}")
    assert not leftovers, f"the tests left behind {leftovers}"


@pytest.fixture(scope="session")
def podman_image(podman, docker, image, tmp_path_factory) -> str:
    """The session's image, as Docker built it, loaded into podman (`docker save | podman load`:
    a second build would cost CI two minutes)."""
    archive = tmp_path_factory.mktemp("podman-load") / "image.tar"
    started = time.monotonic()
    docker("save", "--output", str(archive), image, timeout=600)
    said = podman("load", "--input", str(archive), timeout=600).stdout  # "Loaded image: NAME"
    archive.unlink()
    figures.record("docker save | podman load of the image", f"{time.monotonic() - started:.0f} s")
    loaded = said.strip().splitlines()[-1].split(": ", 1)[1].split(",")[0]
    yield loaded
    podman("rmi", "--force", loaded, check=False)


def pytest_terminal_summary(terminalreporter):
    if figures.recorded or appliance_image.builds:
        terminalreporter.write_sep("-", "container figures")
        for name, value in figures.recorded.items():
            terminalreporter.write_line(f"{name}: {value}")
        by_engine = {}
        for build in appliance_image.builds:
            engine = build.split(":")[0]
            by_engine[engine] = by_engine.get(engine, 0) + 1
        terminalreporter.write_line("image builds in this test run: " + (", ".join(
            f"{count} by {engine}" for engine, count in by_engine.items()) or "none"))
