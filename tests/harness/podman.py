"""A podman of the tests' own.

`IsolatedPodman` keeps everything podman writes (images, containers, volumes, its database, run
and temporary files, network configs) in one folder, with the settings a machine without
systemd, on cgroup v1, needs:

    runtime runc             crun fails on a cgroup v1 setup
    cgroup manager cgroupfs  there is no systemd to ask
    events logger file       no journald either
    ulimits 20000/32768      higher defaults are refused

Outside that folder podman still touches a few host paths (netavark's IP allocations under
/run/containers, runc's state, an image blob cache, a lock segment in /dev/shm), and netavark
programs iptables (its NETAVARK chains) and makes the podman0 bridge for port forwarding.
`HostFootprint` notes what existed before, so that only what podman added is taken away
(tests/harness/engine_footprint.py).

Its containers are tests/harness/containers.py's, as the Docker engine's are.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.harness import engine_footprint
from tests.harness.containers import Container, TrackedContainers

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{folder}/tmp"

[network]
network_config_dir = "{folder}/netcfg"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{folder}/storage"
runroot = "{folder}/run"
"""

# Nothing is ever pulled: every image the tests use is built or imported here.
REGISTRIES_CONF = """\
unqualified-search-registries = []
"""

# Host paths podman or its helpers create outside the folder. Removed afterwards only if the tests
# created them; runc's state folder, which other runc users share, only if also left empty.
# (/run/netns stays: it is a mount point that `ip netns` shares with everyone.)
PODMAN_NAMES = engine_footprint.EngineNames(
    engine="podman",
    rules=re.compile(r"NETAVARK|\bpodman\d+\b|CNI-|\bcni-podman\d+\b"),
    links=re.compile(r"^(podman\d+|cni-podman\d+|veth\w+)$"),
    paths=("/run/containers", "/var/lib/containers", "/dev/shm/libpod_lock"),
    shared_dirs=("/run/runc",))

__all__ = ["Container", "TrackedContainers"]  # the containers it runs, for its users to import


class PodmanError(RuntimeError):
    """A podman command that failed; the message holds the command and everything it printed."""


class IsolatedPodman:
    """The podman CLI, bound to its own storage, configuration and networks under `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        for subfolder in ("storage", "run", "tmp", "netcfg"):
            (folder / subfolder).mkdir(parents=True, exist_ok=True)
        files = {"containers.conf": CONTAINERS_CONF, "storage.conf": STORAGE_CONF,
                 "registries.conf": REGISTRIES_CONF}
        for name, template in files.items():
            (folder / name).write_text(template.format(folder=folder))
        # With these, a person can point their own shell at the same podman to look around.
        self.env = {**os.environ,
                    "CONTAINERS_CONF": str(folder / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf"),
                    "CONTAINERS_REGISTRIES_CONF": str(folder / "registries.conf")}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True,
                 ) -> subprocess.CompletedProcess:
        """Runs `podman ARGS...`; stdout and stderr come back as text, separately."""
        command = ["podman", *map(str, args)]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise PodmanError(f"{' '.join(command)} exited {result.returncode}\n"
                              f"{result.stdout}{result.stderr}")
        return result

    def stream(self, *args: str, timeout: float) -> tuple[int, str]:
        """Runs `podman ARGS...` with stdout and stderr as one text, in order (for builds)."""
        result = subprocess.run(["podman", *map(str, args)], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=timeout, check=False)
        return result.returncode, result.stdout

    def inspect(self, kind: str, name: str) -> dict:
        return json.loads(self(kind, "inspect", name).stdout)[0]

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and images still in the store, by kind; empty lists when clean."""
        return {kind: self(*command).stdout.split()
                for kind, command in {"containers": ("ps", "--all", "--quiet"),
                                      "volumes": ("volume", "ls", "--quiet"),
                                      "images": ("images", "--all", "--quiet")}.items()}

    def remove_containers(self, names: list[str]) -> None:
        self("rm", "--force", "--volumes", "--time", "0", *names, timeout=120, check=False)

    def reset(self) -> None:
        """Deletes everything in this podman's store, then the folder itself."""
        self("system", "reset", "--force", timeout=300, check=False)
        for mount in _mounts_under(self.folder):  # none expected after a reset; never leave one
            subprocess.run(["umount", "--lazy", mount], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _mounts_under(folder: Path) -> list[str]:
    mount_points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((m for m in mount_points if m.startswith(f"{folder}/")), reverse=True)


class HostFootprint(engine_footprint.HostFootprint):
    """What the host had before the tests' podman ran, so that what it adds can be taken away."""

    @classmethod
    def now(cls) -> HostFootprint:
        return cls.taken(PODMAN_NAMES)


def other_podman_processes() -> list[int]:
    """podman and conmon processes on this host (call it while none of ours runs): another podman
    at work may be using the host paths HostFootprint would take away."""
    return engine_footprint.processes_named("podman", "conmon")
