"""The real Docker engine, of the tests' own: Debian's dockerd (20.10, with its own containerd and
runc), started as root with everything it keeps under one folder, and the docker CLI (with the
Compose v2 and buildx plugins, .ci/install-docker-plugins.sh) pointed at it.

    folder/docker.sock, docker.pid   the API socket and dockerd's pid
    folder/data                      images, containers, volumes, BuildKit's cache (--data-root)
    folder/exec                      containerd's state, runc's, network namespaces (--exec-root)
    folder/docker-config             the CLI's DOCKER_CONFIG, its cli-plugins linked from the cache
    folder/daemon.json, key.json     so that nothing of /etc/docker is read or written

The settings this kind of machine needs (no systemd, cgroup v1): the cgroupfs driver, and
default ulimits of 20000 open files and 32768 processes (higher ones are refused).

Outside the folder dockerd programs netfilter (iptables) for its bridges and published ports,
makes the docker0 bridge (and one per Compose network), and creates /run/docker. `stop()` removes
every container, stops dockerd by its pid, unmounts what it left mounted under the folder, deletes
the folder, and takes that back (tests/harness/engine_footprint.py). Two dockerds on one host
would share those chains and docker0, so `start()` refuses while another dockerd runs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.harness import debian_base
from tests.harness.engine_footprint import EngineNames, HostFootprint, processes_named
from tests.harness.waiting import GaveUp, wait_until

DOCKERD_OPTIONS = ["--exec-opt", "native.cgroupdriver=cgroupfs",
                   "--default-ulimit", "nofile=20000:20000",
                   "--default-ulimit", "nproc=32768:32768"]
START_WITHIN_SECS = 60
STOP_WITHIN_SECS = 60
PLUGINS = ("docker-compose", "docker-buildx")
PLUGIN_CACHE = debian_base.CACHE_DIR / "docker-cli-plugins"
# The CLI's own plugin folders, for a machine where the plugins are installed system-wide.
SYSTEM_PLUGIN_DIRS = [Path("/usr/local/lib/docker/cli-plugins"),
                      Path("/usr/local/libexec/docker/cli-plugins"),
                      Path("/usr/lib/docker/cli-plugins"), Path("/usr/libexec/docker/cli-plugins")]
DOCKER_NAMES = EngineNames(
    engine="docker",
    rules=re.compile(r"DOCKER|\bdocker0\b|\bbr-[0-9a-f]{12}\b"),
    links=re.compile(r"^(docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7})$"),
    paths=("/run/docker", "/etc/docker"))
REQUIRED_TOOLS = ("dockerd", "containerd", "runc", "docker", "iptables", "nft", "debootstrap")


class DockerError(RuntimeError):
    """A docker command that failed; the message holds the command and everything it printed."""


def missing_tools() -> list[str]:
    """What the Docker tests need and this machine lacks, said as what to run."""
    missing = [tool for tool in REQUIRED_TOOLS if not shutil.which(tool)]
    missing += [f"the docker CLI plugin {plugin}" for plugin in PLUGINS if not plugin_path(plugin)]
    return missing


def plugin_path(plugin: str) -> Path | None:
    for folder in [PLUGIN_CACHE, *SYSTEM_PLUGIN_DIRS]:
        if (folder / plugin).is_file() and os.access(folder / plugin, os.X_OK):
            return folder / plugin
    return None


class DockerEngine:
    """dockerd with its state under `folder`, and the docker CLI bound to it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.socket = folder / "docker.sock"
        self.pid_file = folder / "docker.pid"
        self.log_file = folder / "dockerd.log"
        self.process: subprocess.Popen | None = None
        self.footprint: HostFootprint | None = None
        config = folder / "docker-config"
        (config / "cli-plugins").mkdir(parents=True, exist_ok=True)
        for plugin in PLUGINS:
            if (found := plugin_path(plugin)) and found.parent not in SYSTEM_PLUGIN_DIRS:
                (config / "cli-plugins" / plugin).symlink_to(found)
        # With these, a person can point their own shell at the same engine to look around.
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                    "DOCKER_CONFIG": str(config)}
        for variable in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                         "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
            self.env.pop(variable, None)

    # -- the daemon ---------------------------------------------------------------------------

    def start(self) -> float:
        """Starts dockerd; returns the seconds until it answered."""
        if others := processes_named("dockerd"):
            raise DockerError(
                "another dockerd runs on this machine, and two would share docker0 and the DOCKER "
                "iptables chains (one a test session left, when it was killed, names a "
                "cifar10-docker-* folder: stop it by its pid, then run the tests again):\n"
                + "\n".join(f"  pid {pid}: {command_line(pid)}" for pid in others))
        self.footprint = HostFootprint.taken(DOCKER_NAMES)
        # Its key would otherwise go to /etc/docker/key.json (a setting of the file alone).
        (self.folder / "daemon.json").write_text(json.dumps(
            {"deprecated-key-path": str(self.folder / "key.json")}) + "\n")
        command = ["dockerd", "--host", f"unix://{self.socket}",
                   "--data-root", str(self.folder / "data"),
                   "--exec-root", str(self.folder / "exec"),
                   "--pidfile", str(self.pid_file),
                   "--config-file", str(self.folder / "daemon.json"),
                   *DOCKERD_OPTIONS]
        started = time.monotonic()
        with self.log_file.open("w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

        def answers() -> bool:
            if self.process.poll() is not None:
                raise GaveUp(f"dockerd exited {self.process.returncode}:\n{self.log_tail()}")
            return self.socket.exists() and self("version", check=False).returncode == 0

        try:
            wait_until(answers, START_WITHIN_SECS, "dockerd to answer", 0.2)
        except GaveUp as gave_up:
            raise DockerError(f"{gave_up}\n{self.log_tail()}") from None
        return time.monotonic() - started

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-characters:] if self.log_file.exists() \
            else ""

    def stop(self) -> list[str]:
        """Removes every container, stops dockerd by its pid, leaves nothing behind; returns what
        it had to take away besides the folder."""
        removed = []
        if self.process and self.process.poll() is None:
            try:
                if names := self("ps", "--all", "--quiet", check=False).stdout.split():
                    self.remove_containers(names)
            except subprocess.TimeoutExpired:
                removed.append("containers (dockerd did not answer: stopped with it)")
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_WITHIN_SECS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                removed.append("dockerd (killed: it did not stop on SIGTERM)")
        # containerd and its shims are dockerd's children and go with it; any that outlived it
        # (a shim of a container that would not die) names this folder on its command line.
        for pid in self.processes_of_this_engine():
            os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid}")
        for mount in mounts_under(self.folder):
            subprocess.run(["umount", "--lazy", mount], check=False)
            removed.append(f"mount {mount}")
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.footprint:
            removed += self.footprint.restore()
        return removed

    def processes_of_this_engine(self) -> list[int]:
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(self.folder).encode() in cmdline.read_bytes():
                    pids.append(int(cmdline.parent.name))
            except OSError:
                continue
        return [pid for pid in pids if pid != os.getpid()]

    # -- the CLI ------------------------------------------------------------------------------

    def __call__(self, *args: str, timeout: float = 120, check: bool = True,
                 cwd: Path | None = None, env: dict | None = None,
                 ) -> subprocess.CompletedProcess:
        """Runs `docker ARGS...`; stdout and stderr come back as text, separately. `env` adds
        to the engine's environment (the shell a user types the command in)."""
        command = ["docker", *map(str, args)]
        result = subprocess.run(command, env={**self.env, **(env or {})}, cwd=cwd,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise DockerError(f"{' '.join(command)} exited {result.returncode}\n"
                              f"{result.stdout}{result.stderr}")
        return result

    def stream(self, *args: str, timeout: float, cwd: Path | None = None,
               env: dict | None = None) -> tuple[int, str]:
        """Runs `docker ARGS...` with stdout and stderr as one text, in order (builds, logs)."""
        result = subprocess.run(["docker", *map(str, args)], env={**self.env, **(env or {})},
                                cwd=cwd, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=timeout, check=False)
        return result.returncode, result.stdout

    def popen(self, *args: str, output: Path, cwd: Path | None = None,
              env: dict | None = None) -> subprocess.Popen:
        """Starts `docker ARGS...` in the foreground, as a user does in a terminal (`compose
        up`), its output to the file `output`."""
        with output.open("ab") as sink:
            return subprocess.Popen(["docker", *map(str, args)], env={**self.env, **(env or {})},
                                    cwd=cwd, stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    def inspect(self, kind: str, name: str) -> dict:
        return json.loads(self(kind, "inspect", name).stdout)[0]

    def remove_containers(self, names: list[str]) -> None:
        self("rm", "--force", "--volumes", *names, timeout=120, check=False)

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks still there, by kind; empty lists when clean."""
        networks = self("network", "ls", "--format", "{{.Name}}").stdout.split()
        return {"containers": self("ps", "--all", "--quiet").stdout.split(),
                "volumes": self("volume", "ls", "--quiet").stdout.split(),
                "networks": [n for n in networks if n not in ("bridge", "host", "none")]}

    def processes(self, container: str) -> list[tuple[str, str]]:
        """(user, command) of every process in the container, as the host sees them."""
        listing = self("top", container, "-o", "pid,user,args").stdout.splitlines()[1:]
        return [tuple(line.split(None, 2)[1:]) for line in listing if line.strip()]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def mounts_under(folder: Path) -> list[str]:
    """Mount points below `folder`, deepest first."""
    mount_points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((m for m in mount_points if m.startswith(f"{folder}/") or m == str(folder)),
                  reverse=True)
