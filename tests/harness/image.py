"""The appliance's image as the tests build it: the CPU flavor of this checkout's Dockerfile, on
a Debian base made here (no registry can be pulled from), with the host's CA bundle as the build
secret (HTTPS from inside a build may go through a proxy that re-signs it).

On the real Docker engine, compose_build() builds it as the README's CPU command does, with
Compose in a clean copy of the checkout (clean_checkout), BuildKit inside the engine, and the base
imported as the Dockerfile's own default `debian:bookworm-slim`, so that nothing needs pulling.
On podman, build_image() builds it with buildah on a base passed as BASE_IMAGE (the container
fixtures, bench.faults and bench.startup). Both count their builds: pytest's summary says how
many a test session did, by engine (one each, when all goes well).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import debian_base
from tests.harness.environment import REPO_ROOT
from tests.harness.podman import IsolatedPodman

# podman's (buildah's) build
BASE_IMAGE = "localhost/cifar10-test-base:bookworm"
IMAGE = "localhost/cifar10-appliance:test-cpu"
# The real Docker engine's, through Compose: the files the README's CPU command names in .env
# (COMPOSE_FILE), and the one name both flavors are built under.
COMPOSE_CPU_FILES = ("-f", "docker/compose.yaml", "-f", "docker/compose.cpu.yaml")
CPU_IMAGE = "cifar10-appliance:latest"
DEBIAN_SLIM = "debian:bookworm-slim"  # the Dockerfile's default BASE_IMAGE, made here
BUILD_TIMEOUT_SECS = 1800

builds: list[str] = []  # "<engine>: <tag>" for each build of this checkout, in this process


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
    builds.append(f"podman (buildah): {tag}")
    status, log = podman.stream("build", *options, "--tag", tag, REPO_ROOT,
                                timeout=BUILD_TIMEOUT_SECS)
    if status != 0:
        raise BuildFailed(f"podman build exited {status}; the end of its log:\n{log[-6000:]}")
    return Build(log, time.monotonic() - started, options)


# -- the real Docker engine -------------------------------------------------------------------

def clean_checkout(destination: Path) -> Path:
    """A copy of this checkout as a clone of it holds it: the files git tracks (as the work tree
    has them now) and new ones it does not ignore; no .venv, no cifar10_train, no caches."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not there
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def import_debian_base_into_docker(docker, work_dir: Path) -> None:
    """Makes the local Debian base (debootstrap, cached) the engine's `debian:bookworm-slim`."""
    tarball = debian_base.rootfs_tarball(work_dir)
    docker("import", "--change", 'CMD ["bash"]', tarball, DEBIAN_SLIM, timeout=300)


def compose_shell() -> dict[str, str]:
    """The variables the README's compose commands read from the user's shell: here the CA
    bundle (CA_BUNDLE), when this host has one."""
    return {"CA_BUNDLE": str(ca_bundle)} if (ca_bundle := host_ca_bundle()) else {}


def compose_build(docker, checkout: Path) -> Build:
    """Builds the CPU flavor as the README's CPU command does (`docker compose up --build` with
    COMPOSE_FILE=docker/compose.yaml:docker/compose.cpu.yaml builds first), in `checkout`."""
    options = [*COMPOSE_CPU_FILES, "--progress", "plain", "build"]
    started = time.monotonic()
    builds.append(f"Docker (Compose, BuildKit): {CPU_IMAGE}")
    status, log = docker.stream("compose", *options, cwd=checkout, env=compose_shell(),
                                timeout=BUILD_TIMEOUT_SECS)
    if status != 0:
        raise BuildFailed(f"docker compose build exited {status}; the end of its log:\n"
                          f"{log[-6000:]}")
    return Build(log, time.monotonic() - started, options)


def build_steps(log: str) -> list[tuple[str, bool]]:
    """Each step of a BuildKit build's plain progress log (`#5 [appliance 2/9] RUN ...`), with
    whether BuildKit took it from its cache (`#5 CACHED`)."""
    steps = re.findall(r"^#(\d+) \[(?:\w+ )?\d+/\d+\] (.+)$", log, re.MULTILINE)
    cached = set(re.findall(r"^#(\d+) CACHED$", log, re.MULTILINE))
    return list({number: (instruction, number in cached)
                 for number, instruction in steps}.values())
