"""A podman of the tests' own, and the containers it runs.

`IsolatedPodman` keeps everything podman writes (images, containers, volumes, its database, run
and temporary files, network configs) in one folder, with the settings a machine without
systemd, on cgroup v1, needs:

    runtime runc             crun fails on a cgroup v1 setup
    cgroup manager cgroupfs  there is no systemd to ask
    events logger file       no journald either
    ulimits 20000/32768      higher defaults are refused

Outside that folder podman still touches a few host paths (netavark's IP allocations under
/run/containers, runc's state, an image blob cache, a lock segment in /dev/shm) and iptables
adds nf_tables tables for port forwarding. `HostFootprint` notes what existed before, so that
only what the tests added is taken away.

`TrackedContainers` starts containers and removes every one of them, with its anonymous
volumes, however the test ends (in the spirit of jupyter/docker-stacks' TrackedContainer).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

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
PODMAN_HOST_PATHS = ["/run/containers", "/var/lib/containers", "/dev/shm/libpod_lock"]
GENERIC_HOST_DIRS = ["/run/runc"]


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

    def reset(self) -> None:
        """Deletes everything in this podman's store, then the folder itself."""
        self("system", "reset", "--force", timeout=300, check=False)
        for mount in _mounts_under(self.folder):  # none expected after a reset; never leave one
            subprocess.run(["umount", "--lazy", mount], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _mounts_under(folder: Path) -> list[str]:
    mount_points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((m for m in mount_points if m.startswith(f"{folder}/")), reverse=True)


@dataclass
class HostFootprint:
    """What the host had before the tests' podman ran, so that what it adds can be taken away."""

    nft_tables: set[str]
    existing_paths: set[str]

    @classmethod
    def now(cls) -> HostFootprint:
        paths = {p for p in PODMAN_HOST_PATHS + GENERIC_HOST_DIRS if os.path.lexists(p)}
        return cls(nft_tables=_nft_tables(), existing_paths=paths)

    def restore(self) -> list[str]:
        """Removes the nf_tables tables and host paths added since; returns what it removed."""
        removed = []
        for table in sorted(_nft_tables() - self.nft_tables):  # "ip nat", "ip filter", ...
            subprocess.run(["nft", "delete", "table", *table.split()], check=False)
            removed.append(f"nft table {table}")
        for path in PODMAN_HOST_PATHS:
            if path not in self.existing_paths and os.path.lexists(path):
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
                removed.append(path)
        for path in GENERIC_HOST_DIRS:
            if path not in self.existing_paths and os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)
                removed.append(path)
        return removed


def _nft_tables() -> set[str]:
    if not shutil.which("nft"):
        return set()
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                             check=False).stdout
    return {line.removeprefix("table ").strip() for line in listing.splitlines() if line.strip()}


@dataclass
class Container:
    """One container started by TrackedContainers."""

    podman: IsolatedPodman
    name: str
    started_at: float = field(default_factory=time.monotonic)

    def logs(self) -> str:
        """Everything the container printed so far, stdout and stderr interleaved."""
        return self.podman.stream("logs", self.name, timeout=60)[1]

    def state(self) -> dict:
        return self.podman.inspect("container", self.name)["State"]

    def is_running(self) -> bool:
        return self.state()["Running"]

    def wait(self, timeout: float) -> int:
        """Waits for the container to exit; returns its exit code."""
        return int(self.podman("wait", self.name, timeout=timeout).stdout.strip())

    def stop(self, grace_secs: int) -> None:
        """SIGTERM, then SIGKILL after grace_secs, as `docker stop -t` does."""
        self.podman("stop", "--time", str(grace_secs), self.name, timeout=grace_secs + 60)

    def healthcheck(self) -> subprocess.CompletedProcess:
        """Runs the image's HEALTHCHECK once (there is no systemd timer here to run it)."""
        return self.podman("healthcheck", "run", self.name, timeout=60, check=False)


class TrackedContainers:
    """Starts containers from an image and, on close, removes all of them and their volumes."""

    def __init__(self, podman: IsolatedPodman, image: str):
        self.podman = podman
        self.image = image
        self.names: list[str] = []

    def run(self, *command: str, env: dict[str, str] | None = None,
            ports: dict[int, int] | None = None, volumes: dict[Path, str] | None = None,
            ) -> Container:
        """`podman run --detach` the image with env vars, host port -> container port
        publications and host path -> container path mounts (":ro" may end a container path)."""
        name = f"cifar10-test-{uuid.uuid4().hex[:10]}"
        options = ["--name", name, "--pull=never"]
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        for host_port, container_port in (ports or {}).items():
            options += ["--publish", f"{host_port}:{container_port}"]
        for host_path, container_path in (volumes or {}).items():
            options += ["--volume", f"{host_path}:{container_path}"]
        self.names.append(name)
        started_at = time.monotonic()
        self.podman("run", "--detach", *options, self.image, *command, timeout=120)
        return Container(self.podman, name, started_at)

    def remove_all(self) -> None:
        if self.names:
            self.podman("rm", "--force", "--volumes", "--time", "0", *self.names,
                        timeout=120, check=False)
            self.names.clear()

    def __enter__(self) -> TrackedContainers:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove_all()


def other_podman_processes() -> list[int]:
    """podman and conmon processes on this host (call it while none of ours runs). HostFootprint
    takes away the nf_tables tables podman added meanwhile: with another podman at work, each
    would take away the other's."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("podman", "conmon"):
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids
