"""The image, as users run it: who runs, what listens, who may steer supervisord, and what the
layers keep (a build secret, a credential). Each look takes the tests' engine and a running
appliance or the image, and returns what it saw; tests/faults checks it. container_scenario()
builds the image on a podman of its own and takes every look, the bad configs among them."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

from tests.harness.container_runs import (DOCKER_STOP_GRACE_SECS, ENDLESS_RUN, root_owned_volume,
                                          wait_on_container)
from tests.harness.faults.bad_configs import BadConfigs, container_bad_configs
from tests.harness.image import IMAGE, build_image, host_ca_bundle, import_debian_base
from tests.harness.podman import (Container, HostFootprint, IsolatedPodman, TrackedContainers,
                                  other_podman_processes)
from tests.harness.waiting import wait_until

APPLIANCE_PORT = 6006
SOCKET = "/tmp/cifar10-appliance-supervisor.sock"   # the image's (Dockerfile)
NOBODY = "65534:65534"


def running_appliance(podman: IsolatedPodman, containers: TrackedContainers,
                      volumes: dict | None = None) -> Container:
    """Starts the appliance, training until stopped, and waits until its three programs run
    (TensorBoard answers inside the container)."""
    container = containers.run(env=ENDLESS_RUN, volumes=volumes or {})
    probe = ("import urllib.request; urllib.request.urlopen("
             f"'http://127.0.0.1:{APPLIANCE_PORT}/', timeout=2)")
    wait_on_container(container, lambda: podman(
        "exec", container.name, "python3", "-c", probe, check=False).returncode == 0,
        300, "TensorBoard to answer inside the container", interval=2)
    return container


def process_users(podman, container) -> list[tuple[str, str]]:
    """(user, command) of every process in the container, as the host sees them."""
    listing = podman("top", container.name, "user", "args").stdout.splitlines()[1:]
    return [tuple(line.split(None, 1)) for line in listing if line.strip()]


def listening_ports(podman, container) -> set[int]:
    """The TCP ports something listens on inside the container (IPv4 and IPv6)."""
    tables = podman("exec", container.name, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    ports = set()
    for line in tables.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def socket_attempt(podman, container) -> subprocess.CompletedProcess:
    """Another user in the container (uid 65534) connecting to supervisord's control socket
    and asking it something: what came of it."""
    attempt = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect('" + SOCKET + "');"
               "s.sendall(b'POST /RPC2 HTTP/1.0\\r\\nContent-Length: 0\\r\\n\\r\\n');"
               "print(s.recv(64))")
    return podman("exec", "--user", NOBODY, container.name, "python3", "-c", attempt,
                  check=False)


def permission_denied(attempt: subprocess.CompletedProcess) -> bool:
    return "PermissionError" in attempt.stderr or "Permission denied" in attempt.stderr


@dataclasses.dataclass
class RunningAppliance:
    """What a look into a running appliance saw."""
    process_users: list[tuple[str, str]]   # (user, command) of every process
    listening_ports: set[int]
    socket_attempt: subprocess.CompletedProcess


def look_into(podman, container) -> RunningAppliance:
    return RunningAppliance(process_users(podman, container), listening_ports(podman, container),
                            socket_attempt(podman, container))


def image_layers(podman, image: str) -> list[Path]:
    driver = podman.inspect("image", image)["GraphDriver"]["Data"]
    return [Path(layer) for layer in [driver["UpperDir"], *driver.get("LowerDir", "").split(":")]
            if layer]


def _pem_blocks(text: str) -> set[str]:
    return set(re.findall(r"-----BEGIN CERTIFICATE-----\n(.+?)\n-----END CERTIFICATE-----",
                          text, re.S))


def ca_secret_traces(podman, image: str, ca_bundle: Path | None) -> tuple[int, list[str]]:
    """Where the CA bundle handed to the build as a secret left a trace in the image: a layer,
    a history line, an environment variable. Returns how many of the bundle's certificates
    could be told apart from Debian's own (in the image on purpose), and the traces."""
    traces = []
    details = podman.inspect("image", image)
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    metadata = f"{json.dumps(details['Config'])}\n{history}"
    layers = image_layers(podman, image)
    # The bundle's certificates that Debian's bundle in the image lacks (a re-signing proxy's
    # CA): a copy of one anywhere in a layer is the secret left behind.
    own_certificates: set[str] = set()
    if ca_bundle:
        in_image = set()
        for layer in layers:
            debian_bundle = layer / "etc/ssl/certs/ca-certificates.crt"
            if debian_bundle.is_file():
                in_image |= _pem_blocks(debian_bundle.read_text(errors="replace"))
        own_certificates = _pem_blocks(ca_bundle.read_text(errors="replace")) - in_image
    markers = [block.splitlines()[len(block.splitlines()) // 2] for block in own_certificates]
    for marker in markers[:20]:
        found = subprocess.run(["grep", "-rlF", "--", marker, *map(str, layers)],
                               capture_output=True, text=True).stdout.split()
        if found:
            traces.append(f"a certificate of the CA bundle secret is in {found[:3]}")
            break
    if any(marker in metadata for marker in markers):
        traces.append("a certificate of the CA bundle secret is in the image's metadata")
    left = [str(path) for layer in layers for path in layer.glob("run/secrets/*")]
    if left:
        traces.append(f"the build secret's mount point kept files: {left}")
    # (The history may name these: the Dockerfile's RUN line sets PIP_CERT for its own shell.)
    for setting in details["Config"].get("Env") or []:
        if setting.startswith(("PIP_CERT=", "REQUESTS_CA_BUNDLE=", "SSL_CERT_FILE=")):
            traces.append(f"the image's environment points at the CA secret: {setting}")
    return len(own_certificates), traces


CREDENTIAL_FILES = {".netrc", ".git-credentials", ".pypirc", ".npmrc", "id_rsa", "id_ecdsa",
                    "id_ed25519", ".env"}
TOKEN_SHAPES = (r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}"
                r"|glpat-[A-Za-z0-9_-]{20}|xox[abp]-[A-Za-z0-9-]{10,}|://[^/\s:@]+:[^/\s@]+@")
# Where the image's own files are. The installed packages are left out: their test data holds
# sample keys.
OWN_TREES = ["app", "etc", "root", "home", "tmp", "var/tmp", "opt/cifar10", "cifar10_train",
             "cifar10_data", "run"]


def credential_traces(podman, image: str) -> list[str]:
    """Credentials and tokens in the image: files that hold them, key- and token-shaped text in
    its own files, secret-named settings in its metadata."""
    traces = []
    details = podman.inspect("image", image)
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    layers = image_layers(podman, image)
    found = [str(path) for layer in layers for path in layer.rglob("*")
             if path.name in CREDENTIAL_FILES and not path.is_dir()]
    found += [str(path) for layer in layers for pattern in ("**/.docker/config.json",
                                                            "**/.aws/credentials")
              for path in layer.glob(pattern)]
    if found:
        traces.append(f"credential files: {found[:5]}")
    searched = [str(layer / tree) for layer in layers for tree in OWN_TREES
                if (layer / tree).exists()]
    shaped = subprocess.run(["grep", "-rlE", "--binary-files=without-match", TOKEN_SHAPES,
                             *searched], capture_output=True, text=True).stdout.split()
    if shaped:
        traces.append(f"key- or token-shaped text in {shaped[:5]}")
    for line in [*(details["Config"].get("Env") or []), *history.splitlines()]:
        if re.search(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY)\w*=\S", line, re.I):
            traces.append(f"a secret-named setting in the image's metadata: {line[:120]}")
    return traces


@dataclasses.dataclass
class ContainerChecks:
    running: dict[str, RunningAppliance]   # how it was run ("no volume", ...) -> what was seen
    ca_secret_certificates_looked_for: int
    ca_secret_traces: list[str]
    credential_traces: list[str]
    image_layers_searched: int
    bad_configs: BadConfigs                # the table through the image's entrypoint

    def figures(self) -> dict:
        figures: dict = {}
        for name, seen in self.running.items():
            as_root = [command for user, command in seen.process_users if user in ("root", "0")]
            users = len(seen.process_users)
            figures[f"non_root_processes ({name})"] = f"{users - len(as_root)}/{users}"
            figures[f"listening_tcp_ports ({name})"] = sorted(seen.listening_ports)
            figures[f"socket_refused_to_others ({name})"] = (
                seen.socket_attempt.returncode != 0 and permission_denied(seen.socket_attempt))
        return {**figures,
                "ca_secret_certificates_looked_for": self.ca_secret_certificates_looked_for,
                "ca_secret_traces": len(self.ca_secret_traces),
                "credential_traces": len(self.credential_traces),
                "image_layers_searched": self.image_layers_searched,
                **{f"{figure}_in_container": value
                   for figure, value in self.bad_configs.figures().items()}}


def container_scenario(folder: Path) -> ContainerChecks:
    """Builds the image on a podman of its own (as the image_build fixture does), takes every
    look and runs the bad-config table through it, and cleans up after itself."""
    # The cleanup takes away the nf_tables tables that podman added meanwhile: with another
    # podman at work (the container tests, bench.startup), each would take away the other's.
    wait_until(lambda: not other_podman_processes(), 1800, "the other podman processes to end",
               interval=10)
    footprint = HostFootprint.now()
    podman = IsolatedPodman(folder / "podman")
    running: dict[str, RunningAppliance] = {}
    try:
        import_debian_base(podman, folder)
        build_image(podman)
        with TrackedContainers(podman, IMAGE) as containers:
            volumes_of = {"no volume": {},
                          "root-owned volume": {root_owned_volume(folder): "/cifar10_train"}}
            for name, volumes in volumes_of.items():
                container = running_appliance(podman, containers, volumes)
                running[name] = look_into(podman, container)
                container.stop(DOCKER_STOP_GRACE_SECS)
        told_apart, ca_traces = ca_secret_traces(podman, IMAGE, host_ca_bundle())
        return ContainerChecks(
            running=running, ca_secret_certificates_looked_for=told_apart,
            ca_secret_traces=ca_traces, credential_traces=credential_traces(podman, IMAGE),
            image_layers_searched=len(image_layers(podman, IMAGE)),
            bad_configs=container_bad_configs(podman, IMAGE, folder / "bad_configs"))
    finally:
        podman.reset()
        if others := other_podman_processes():
            print(f"left nf_tables and podman's host folders as they are: another podman "
                  f"(pids {others}) may be using them", flush=True)
        else:
            footprint.restore()
