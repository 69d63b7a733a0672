"""The fixtures every test folder shares, defined once (a pytest plugin: the root conftest names
it in `pytest_plugins`, so one test session has one of each, however many folders use it).

Session:  trained_stack  the three programs natively: trained, evaluated, TensorBoard up behind
                         a password
          podman         an isolated podman (own storage, config and networks under one folder)
          base_image     Debian bookworm (minbase) from debootstrap, imported into that podman
          image_build    the Dockerfile built on it, CPU flavor, the host's CA bundle as secret
          image          that image's name
Each test: containers    starts containers from `image` and removes every one of them after

At the end of the session podman's store is reset, its folder deleted, and the nf_tables tables
and host paths podman added are taken away again. pytest's summary ends with the figures the
container tests recorded and how many times the image was built.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness import debian_base, figures, image as appliance_image
from tests.harness.native_stack import TRAINED_STACK_PASSWORD, NativeStack, start_trained_stack
from tests.harness.podman import HostFootprint, IsolatedPodman, TrackedContainers


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


@pytest.fixture(scope="session")
def podman():
    missing = [tool for tool in ("podman", "runc", "debootstrap", "nft") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run .ci/install-system-deps.sh as root")
    if os.geteuid() != 0:
        pytest.skip("the container tests run podman as root")

    footprint = HostFootprint.now()
    engine = IsolatedPodman(Path(tempfile.mkdtemp(prefix="cifar10-podman-")))
    try:
        yield engine
        leftovers = {kind: ids for kind, ids in engine.leftovers().items() if ids}
    finally:
        engine.reset()
        removed = footprint.restore()
        print(f"podman cleanup: store reset; removed {', '.join(removed) or 'nothing else'}")
    assert not leftovers, f"the tests left behind {leftovers}"


@pytest.fixture(scope="session")
def base_image(podman, tmp_path_factory):
    started = time.monotonic()
    how = "cached debootstrap" if debian_base.cached_tarball() else "debootstrap"
    appliance_image.import_debian_base(podman, tmp_path_factory.mktemp("debian"))
    figures.record(f"Debian base image ({how}, then import)", f"{time.monotonic() - started:.0f} s")
    yield appliance_image.BASE_IMAGE
    podman("rmi", "--force", appliance_image.BASE_IMAGE, check=False)


@pytest.fixture(scope="session")
def image_build(podman, base_image) -> appliance_image.Build:
    """Builds the Dockerfile (CPU flavor) once a session: its log, time and options."""
    yield appliance_image.build_image(podman, base_image)
    podman("rmi", "--force", appliance_image.IMAGE, check=False)
    podman("image", "prune", "--force", check=False)  # intermediate layers of rebuilds


@pytest.fixture(scope="session")
def image(image_build) -> str:
    return appliance_image.IMAGE


@pytest.fixture
def containers(podman, image):
    with TrackedContainers(podman, image) as tracked:
        yield tracked


def pytest_terminal_summary(terminalreporter):
    if figures.recorded or appliance_image.builds:
        terminalreporter.write_sep("-", "container figures")
        for name, value in figures.recorded.items():
            terminalreporter.write_line(f"{name}: {value}")
        terminalreporter.write_line(f"image builds this session: {len(appliance_image.builds)}")
