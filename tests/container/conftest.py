"""Fixtures for the container tests: the real Dockerfile, built and run by a podman of their own.

Session:  podman        an isolated podman (own storage, config and networks under one folder)
          base_image    Debian bookworm (minbase) from debootstrap, imported into that podman
          image         the Dockerfile built on it, CPU flavor, the host's CA bundle as secret
Each test: containers   starts containers from `image` and removes every one of them after

At the end of the session the store is reset, its folder deleted, and the nf_tables tables and
host paths podman added are taken away again.

Figures the project reports (build time and size, start to TensorBoard, start to first eval)
go through `record()` and are printed in pytest's summary under "container figures".
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from . import debian_base
from .podman import HostFootprint, IsolatedPodman, TrackedContainers

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/cifar10-test-base:bookworm"
IMAGE = "localhost/cifar10-appliance:test-cpu"
BUILD_TIMEOUT_SECS = 1800
# A uid:gid the image does not know, as a user's own is: what the container writes into a
# mounted train_dir must belong to the folder's owner.
HOST_OWNER = 1234

_figures: dict[str, str] = {}


def record(name: str, value: str) -> None:
    """Keeps a figure for the summary at the end of the run (and prints it, for `-s`)."""
    _figures[name] = value
    print(f"{name}: {value}")


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.write_sep("-", "container figures")
        for name, value in _figures.items():
            terminalreporter.write_line(f"{name}: {value}")


def host_ca_bundle() -> Path | None:
    """The CA bundle this host trusts, which also vouches for a proxy that re-signs TLS."""
    candidates = [os.environ.get(variable) for variable in
                  ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")]
    candidates.append("/etc/ssl/certs/ca-certificates.crt")
    try:
        import certifi
        candidates.append(certifi.where())
    except ImportError:
        pass
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def import_debian_base(podman, work_dir: Path) -> None:
    """Makes the local Debian base (debootstrap, cached) available to podman as BASE_IMAGE."""
    tarball = debian_base.rootfs_tarball(work_dir)
    podman("import", "--change", 'CMD ["/bin/bash"]', tarball, BASE_IMAGE, timeout=300)


def cpu_build_options(base_image: str = BASE_IMAGE) -> list[str]:
    """`podman build` options for the CPU flavor on the local base (all but the tag), with the
    host's CA bundle as the build secret when there is one."""
    options = ["--format", "docker",  # OCI images have no HEALTHCHECK
               "--pull=never",
               "--build-arg", f"BASE_IMAGE={base_image}",
               "--build-arg", "TF_PACKAGE=tensorflow-cpu"]
    if ca_bundle := host_ca_bundle():
        options += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    return options


@pytest.fixture(scope="session")
def base_image(podman, tmp_path_factory):
    started = time.monotonic()
    how = "cached debootstrap" if debian_base.cached_tarball() else "debootstrap"
    import_debian_base(podman, tmp_path_factory.mktemp("debian"))
    record(f"Debian base image ({how}, then import)", f"{time.monotonic() - started:.0f} s")
    yield BASE_IMAGE
    podman("rmi", "--force", BASE_IMAGE, check=False)


@pytest.fixture(scope="session")
def image_build(podman, base_image):
    """Builds the Dockerfile (CPU flavor) once; returns its log, how long it took, and the
    options it was built with (all but the tag)."""
    options = cpu_build_options(base_image)
    started = time.monotonic()
    status, log = podman.stream("build", *options, "--tag", IMAGE, REPO,
                                timeout=BUILD_TIMEOUT_SECS)
    seconds = time.monotonic() - started
    if status != 0:
        pytest.fail(f"podman build exited {status}; the end of its log:\n{log[-6000:]}")
    yield {"log": log, "seconds": seconds, "options": options}
    podman("rmi", "--force", IMAGE, check=False)
    podman("image", "prune", "--force", check=False)  # intermediate layers of rebuilds


@pytest.fixture(scope="session")
def image(image_build):
    return IMAGE


@pytest.fixture
def containers(podman, image):
    with TrackedContainers(podman, image) as tracked:
        yield tracked


def owned_train_dir(parent: Path) -> Path:
    """An empty folder for /cifar10_train, owned by HOST_OWNER."""
    folder = parent / "cifar10_train"
    folder.mkdir()
    os.chown(folder, HOST_OWNER, HOST_OWNER)
    return folder
