"""Containers as the tests start them, on either engine (tests/harness/docker_engine.py, the real
Docker engine; tests/harness/podman.py): both CLIs take the same `run`, `logs`, `inspect`,
`wait`, `stop` and `exec`.

`TrackedContainers` starts containers and removes every one of them, with its anonymous volumes,
however the test ends (in the spirit of jupyter/docker-stacks' TrackedContainer).
"""
from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class Engine(Protocol):
    """What a container engine of the tests offers (DockerEngine, IsolatedPodman)."""

    def __call__(self, *args: str, timeout: float = 120, check: bool = True,
                 ) -> subprocess.CompletedProcess: ...

    def stream(self, *args: str, timeout: float) -> tuple[int, str]: ...

    def inspect(self, kind: str, name: str) -> dict: ...

    def remove_containers(self, names: list[str]) -> None: ...


@dataclass
class Container:
    """One container started by TrackedContainers."""

    engine: Engine
    name: str
    started_at: float = field(default_factory=time.monotonic)

    def logs(self) -> str:
        """Everything the container printed so far, stdout and stderr interleaved."""
        return self.engine.stream("logs", self.name, timeout=60)[1]

    def state(self) -> dict:
        return self.engine.inspect("container", self.name)["State"]

    def is_running(self) -> bool:
        return self.state()["Running"]

    def wait(self, timeout: float) -> int:
        """Waits for the container to exit; returns its exit code."""
        return int(self.engine("wait", self.name, timeout=timeout).stdout.strip())

    def stop(self, grace_secs: int) -> None:
        """SIGTERM, then SIGKILL after grace_secs, as `docker stop -t` does."""
        self.engine("stop", "--time", str(grace_secs), self.name, timeout=grace_secs + 60)

    def exec(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess:
        """`exec` a command in the container (as `user`); never raises for its exit code."""
        options = ["--user", user] if user else []
        return self.engine("exec", *options, self.name, *command, timeout=120, check=False)

    def health(self) -> str:
        """The engine's verdict of the image's HEALTHCHECK: starting, healthy or unhealthy."""
        state = self.state()
        return (state.get("Health") or state.get("Healthcheck") or {}).get("Status", "")

    def healthcheck(self) -> subprocess.CompletedProcess:
        """Runs the image's HEALTHCHECK once, now (podman; Docker has no such command)."""
        return self.engine("healthcheck", "run", self.name, timeout=60, check=False)


class TrackedContainers:
    """Starts containers from an image and, on close, removes all of them and their volumes."""

    def __init__(self, engine: Engine, image: str):
        self.engine = engine
        self.image = image
        self.names: list[str] = []

    def run(self, *command: str, env: dict[str, str] | None = None,
            ports: dict[int, int] | None = None, volumes: dict[Path, str] | None = None,
            options: tuple[str, ...] = ()) -> Container:
        """`run --detach` the image with env vars, host port -> container port publications (on
        127.0.0.1, as the README publishes), host path -> container path mounts (":ro" may end a
        container path), and any other `run` options."""
        name = f"cifar10-test-{uuid.uuid4().hex[:10]}"
        arguments = ["--name", name, "--pull=never", *options]
        for key, value in (env or {}).items():
            arguments += ["--env", f"{key}={value}"]
        for host_port, container_port in (ports or {}).items():
            arguments += ["--publish", f"127.0.0.1:{host_port}:{container_port}"]
        for host_path, container_path in (volumes or {}).items():
            arguments += ["--volume", f"{host_path}:{container_path}"]
        self.names.append(name)
        started_at = time.monotonic()
        self.engine("run", "--detach", *arguments, self.image, *command, timeout=120)
        return Container(self.engine, name, started_at)

    def remove_all(self) -> None:
        if self.names:
            self.engine.remove_containers(self.names)
            self.names.clear()

    def __enter__(self) -> TrackedContainers:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove_all()
