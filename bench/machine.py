"""What every benchmark states beside its figures: when it ran, and on what.

A figure without its machine is not comparable with anything, so each benchmark's JSON line
carries this, and bench/RESULTS.md quotes it.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def usable_cores() -> int:
    # The cores this process may run on, which a container or taskset may limit below the host's.
    return len(os.sched_getaffinity(0))


def cpu_busy_seconds() -> float:
    """CPU time all programs on this machine have spent busy since boot, summed over cores.
    The difference over a window, less a benchmark's own processes, is what others took."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Window:
    """A stretch of a benchmark: how long it took, and the cores this process and all the other
    programs of the machine kept busy meanwhile (set when the `with` block ends)."""
    seconds: float = 0.0
    own_cores: float = 0.0
    other_cores: float = 0.0

    def __enter__(self) -> "Window":
        self._started = time.perf_counter(), time.process_time(), cpu_busy_seconds()
        return self

    def __exit__(self, *exc_info) -> None:
        wall, cpu, busy = self._started
        self.seconds = time.perf_counter() - wall
        self.own_cores = (time.process_time() - cpu) / self.seconds
        self.other_cores = max(0.0, (cpu_busy_seconds() - busy) / self.seconds - self.own_cores)


def code_version() -> str:
    """The commit measured, with '-dirty' when the working tree had changes beyond it."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except OSError:
        return "?"


def describe() -> dict:
    return {
        "date": datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y"),
        "cores": usable_cores(),
        "cpu_model": cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "code": code_version(),
        # This machine is shared with other work; a load well above 0 means noisier figures.
        "load_average_1min": os.getloadavg()[0],
    }


def headline(machine: dict) -> str:
    return (f"{machine['date']}: {machine['cores']} cores of {machine['cpu_model']}, "
            f"{machine['memory_gib']} GiB, Python {machine['python']}, code {machine['code']}; "
            f"load average {machine['load_average_1min']:.2f} at the start")
