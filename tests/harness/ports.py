"""Ports on this host: free ones to publish on, and whether one answers HTTP."""
from __future__ import annotations

import base64
import socket
import urllib.request


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 (all held at once while they are picked)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    return free_ports(1)[0]


def basic_authorization(password: str) -> str:
    """The Authorization header's value that gives `password` by HTTP Basic authentication
    (the appliance's TensorBoard takes any user name)."""
    return "Basic " + base64.b64encode(f"tests:{password}".encode()).decode()


def answers_http(port: int, timeout: float = 2, password: str | None = None) -> bool:
    """GET http://127.0.0.1:PORT/ returns 200 (TensorBoard's front page, for the appliance),
    given the password when there is one."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/")
    if password:
        request.add_header("Authorization", basic_authorization(password))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False
