"""The appliance's programs as the benchmarks run them: real `python -m app ROLE` processes.

A benchmark that claims "eval does not starve training" or "the trainer stays under 2 GiB" has to
measure the processes a user runs, not a function inside the benchmark. `AppProcess` starts one,
timestamps each line it prints as it arrives (the trainer's "step N/M" lines are its clock), and
reads its CPU time and peak memory from the kernel. Every process is stopped by its own pid.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests.harness import log_lines
from tests.harness.environment import REPO_ROOT, app_environment

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

TRAIN_STEP_LINE = log_lines.TRAIN_STEP
EVAL_RESULT_LINE = log_lines.PRECISION


def write_config(folder: Path, settings: dict) -> Path:
    """A config file for the app: `settings` by section, paths inside `folder` unless given."""
    settings = {section: dict(keys) for section, keys in settings.items()}
    settings.setdefault("paths", {}).setdefault("train_dir", str(folder / "train"))
    settings["paths"].setdefault("data_dir", str(folder / "data"))
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


class AppProcess:
    def __init__(self, role: str, config_file: Path, *arguments: str, log_file: Path | None = None,
                 niceness: int = 0):
        self.role = role
        self.lines: list[tuple[float, str]] = []  # (time.monotonic() on arrival, line)
        self._log = open(log_file, "a") if log_file else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", role, "--config", str(config_file), *arguments],
            cwd=REPO_ROOT, env=app_environment(TF_CPP_MIN_LOG_LEVEL="2"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None)
        self.pid = self.process.pid
        self.started_at = time.monotonic()
        self.peak_rss_bytes = 0      # from wait4's rusage, once the process has been reaped
        self.exit_code: int | None = None
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()

    def _read_lines(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            if self._log:
                self._log.write(f"{self.role} | {line}")
                self._log.flush()

    # -- what it printed -------------------------------------------------------------------------

    def matches(self, pattern: re.Pattern, since: float = 0.0) -> list[tuple[float, re.Match]]:
        return [(arrived, match) for arrived, line in list(self.lines)
                if arrived >= since and (match := pattern.search(line))]

    def wait_for_line(self, pattern: re.Pattern, timeout: float, since: float = 0.0) -> float:
        """Waits until a line matching `pattern` arrives; returns its arrival time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.matches(pattern, since):
                return found[0][0]
            if self.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.role}: no line matching {pattern.pattern!r} within "
                           f"{timeout:.0f} s (exit code {self.poll()}); it printed:\n"
                           + self.tail())

    def tail(self, lines: int = 30) -> str:
        return "\n".join(line for _, line in self.lines[-lines:])

    def train_steps(self, since: float = 0.0,
                    until: float = float("inf")) -> list[tuple[float, int]]:
        """(arrival time, global step) of each trainer log line in [since, until]."""
        return [(arrived, int(match["step"]))
                for arrived, match in self.matches(TRAIN_STEP_LINE, since) if arrived <= until]

    # -- what the kernel says ----------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, all threads (TensorFlow's pools included)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def high_water_rss_bytes(self) -> int:
        """VmHWM: the peak resident set so far, while the process is alive."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    # -- ending it -------------------------------------------------------------------------------

    def poll(self) -> int | None:
        """The exit code once it has exited, else None. Reaps it with wait4, which also says its
        peak RSS (so never Popen.poll/wait, which would reap it first and lose that)."""
        if self.exit_code is None:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self._reaped(status, usage)
        return self.exit_code

    def wait(self, timeout: float) -> int:
        """Waits for the process to exit by itself."""
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.role} (pid {self.pid}) still running after "
                                   f"{timeout:.0f} s")
            time.sleep(0.1)
        return self.exit_code

    def pause(self) -> None:
        """SIGSTOP: it holds its memory but takes no CPU until resume()."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, grace: float = 30.0) -> int:
        """SIGTERM (the trainer saves and exits), SIGKILL after `grace` seconds."""
        if self.poll() is not None:
            return self.exit_code
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.kill(self.pid, signal.SIGCONT)  # a paused process acts on SIGTERM only once resumed
        except ProcessLookupError:
            pass
        try:
            return self.wait(grace)
        except TimeoutError:
            os.kill(self.pid, signal.SIGKILL)
            return self.wait(10)

    def _reaped(self, status: int, usage) -> None:
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.exit_code  # so that Popen does not wait for it again
        self.peak_rss_bytes = usage.ru_maxrss * 1024  # Linux reports KiB
        self._reader.join(timeout=5)
        if self._log:
            self._log.close()


def run_to_completion(role: str, config_file: Path, *arguments: str, timeout: float,
                      log_file: Path | None = None) -> AppProcess:
    """Runs `python -m app ROLE` until it exits; raises if it fails."""
    process = AppProcess(role, config_file, *arguments, log_file=log_file)
    try:
        code = process.wait(timeout)
    except TimeoutError:
        process.stop(grace=10)
        raise
    if code != 0:
        raise RuntimeError(f"python -m app {role} exited {code}:\n{process.tail()}")
    return process
