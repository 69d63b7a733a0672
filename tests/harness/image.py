"""The appliance's image as the tests build it: the CPU flavor of this checkout's Dockerfile, on
a Debian base made here (no registry can be pulled from), with the host's CA bundle as the build
secret (HTTPS from inside a build may go through a proxy that re-signs it).

The container fixtures, bench.faults and bench.startup all build it through build_image(), which
counts its builds: pytest's summary says how many a test session did (one, when all goes well).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import debian_base
from tests.harness.environment import REPO_ROOT
from tests.harness.podman import IsolatedPodman

BASE_IMAGE = "localhost/cifar10-test-base:bookworm"
IMAGE = "localhost/cifar10-appliance:test-cpu"
BUILD_TIMEOUT_SECS = 1800

builds: list[str] = []  # the tag of each build of this checkout, in this process


class BuildFailed(RuntimeError):
    pass


@dataclass
class Build:
    log: str
    seconds: float
    options: list[str]   # everything `podman build` was given but the tag and the context


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


def import_debian_base(podman: IsolatedPodman, work_dir: Path) -> None:
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


def build_image(podman: IsolatedPodman, base_image: str = BASE_IMAGE, tag: str = IMAGE) -> Build:
    """Builds this checkout's Dockerfile, CPU flavor, on base_image (already in podman)."""
    options = cpu_build_options(base_image)
    started = time.monotonic()
    builds.append(tag)
    status, log = podman.stream("build", *options, "--tag", tag, REPO_ROOT,
                                timeout=BUILD_TIMEOUT_SECS)
    if status != 0:
        raise BuildFailed(f"podman build exited {status}; the end of its log:\n{log[-6000:]}")
    return Build(log, time.monotonic() - started, options)
