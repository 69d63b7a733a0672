"""A native stack's log as it grows: every line, and the lives of each supervised program."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tests.harness import log_lines
from tests.harness.native_stack import child_pids
from tests.harness.waiting import wait_until


@dataclasses.dataclass
class Life:
    """One run of a supervised program, from supervisord's `spawned` line to its `exited`."""
    wrapper_pid: int             # docker/prefix_output.py, which supervisord started
    resumed_step: int | None = None
    last_step: int | None = None
    exit: str | None = None      # supervisord's words: "terminated by SIGKILL; not expected"

    @property
    def reached(self) -> int | None:
        """The highest step this life is known to have completed (or restored)."""
        steps = [s for s in (self.resumed_step, self.last_step) if s is not None]
        return max(steps) if steps else None


class StackLog:
    """Follows the stack's log as it grows: every line, and the lives of each program."""

    def __init__(self, path: Path, from_the_end: bool = False):
        self.path = path
        self.offset = path.stat().st_size if from_the_end and path.exists() else 0
        self.partial = b""
        self.lines: list[str] = []
        self.lives: dict[str, list[Life]] = {}

    def update(self) -> list[str]:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        new = [line.decode(errors="replace") for line in complete]
        for line in new:
            self._follow(line)
        self.lines += new
        return new

    def _follow(self, line: str) -> None:
        if match := log_lines.SPAWNED.search(line):
            self.lives.setdefault(match["program"], []).append(Life(int(match["pid"])))
        elif (match := log_lines.EXITED.search(line)) and self.lives.get(match["program"]):
            self.lives[match["program"]][-1].exit = match["how"]
        elif self.lives.get("train"):
            life = self.lives["train"][-1]
            if match := log_lines.TRAIN_STEP.match(line):
                life.last_step = int(match["step"])
            elif match := log_lines.RESUMED.match(line):
                life.resumed_step = int(match["step"])
            elif log_lines.FRESH_START.match(line):
                life.resumed_step = 0

    def wait(self, condition, timeout: float, what: str, interval: float = 0.02):
        """wait_until, reading the lines written meanwhile before each look."""
        def updated_condition():
            self.update()
            return condition()
        return wait_until(updated_condition, timeout, what, interval)

    def current(self, program: str) -> Life | None:
        self.update()
        lives = self.lives.get(program)
        return lives[-1] if lives else None

    def matching(self, pattern: re.Pattern, **groups) -> list[re.Match]:
        """The lines so far that match pattern (one of log_lines'), with these group values."""
        self.update()
        return [match for line in self.lines for match in log_lines.find(pattern, line, **groups)]

    def tracebacks(self, program: str) -> list[str]:
        """Every traceback program printed, whole: from its first line to the exception's."""
        self.update()
        prefix = f"{program} | "
        printed = [line[len(prefix):] for line in self.lines if line.startswith(prefix)]
        starts = [number for number, line in enumerate(printed) if line.startswith("Traceback")]
        return ["\n".join(_up_to_the_exception(printed[start:])) for start in starts]

    def unexpected_exits(self, program: str) -> list[str]:
        """supervisord's `exited` lines for program that it did not expect: crashes."""
        return [match[0] for match in self.matching(log_lines.EXITED, program=program)
                if "not expected" in match["how"]]


def _up_to_the_exception(lines: list[str]) -> list[str]:
    """A traceback's lines: the indented frames after its first, through the unindented one that
    names the exception."""
    for number, line in enumerate(lines[1:], start=1):
        if not line.startswith(" "):
            return lines[:number + 1]
    return lines


def resumed_after(lives: list[Life], life: Life) -> int | None:
    """The step the next of `lives` after `life` to get that far resumed from (None: none did)."""
    later = lives[lives.index(life) + 1:]
    return next((other.resumed_step for other in later if other.resumed_step is not None), None)


def program_pid(life: Life, timeout: float = 30) -> int:
    """The program itself (`python -m app train`), the child of its prefix_output.py wrapper."""
    children = wait_until(lambda: child_pids(life.wrapper_pid), timeout,
                          f"the child of pid {life.wrapper_pid}", interval=0.01)
    return children[0]
