"""Ports on this host: free ones to publish on, and whether one answers HTTP."""
from __future__ import annotations

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


def answers_http(port: int, timeout: float = 2) -> bool:
    """GET http://127.0.0.1:PORT/ returns 200 (TensorBoard's front page, for the appliance)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False
