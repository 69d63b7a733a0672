"""The README's and docs/'s code blocks, as a reader meets them: every command a user is to type
is in a ```sh block (fenced, anywhere, a list item's too); every other block (indented or fenced
with another language) shows what something prints or holds: log lines, a folder's tree, YAML.

    blocks(path)        every code block of one page, in order
    commands(block)     the commands of a ```sh block, a line each (continuations joined)
    DOC_FILES           README.md, then docs/*.md
"""
from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.harness.environment import REPO_ROOT

DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = ("sh", "bash", "shell")
FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
SHELL_BUILTINS = ("export", "cd", "echo", "printf", "source", ".")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int          # the first line of its text, counted from 1
    language: str      # "" for an indented block or a bare fence
    lines: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES


@dataclass(frozen=True)
class Command:
    text: str          # as the user types it, continuation lines joined by a space
    where: str         # page:line of its first line

    @property
    def bare(self) -> str:
        """The command without a comment at its end."""
        return re.sub(r"\s+#[^'\"]*$", "", self.text)


def blocks(path: Path) -> list[Block]:
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if fence := FENCE.match(line):
            indent, body = len(fence["indent"]), []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith("```"):
                body.append(lines[index][indent:])
                index += 1
            found.append(Block(path, index - len(body) + 1, fence["language"], tuple(body)))
        elif line.startswith("    ") and (index == 0 or not lines[index - 1].strip()) \
                and not _in_list_item(lines, index):
            start, body = index, []
            while index < len(lines) and (lines[index].startswith("    ") or not lines[index].strip()):
                body.append(lines[index][4:])
                index += 1
            while body and not body[-1].strip():
                body.pop()
            found.append(Block(path, start + 1, "", tuple(body)))
            continue
        index += 1
    return found


def _in_list_item(lines: list[str], index: int) -> bool:
    """Whether an indented line continues a list item (its paragraph, not a code block)."""
    for previous in reversed(lines[:index]):
        if not previous.strip():
            continue
        return bool(re.match(r"^\s*(?:[-*]|\d+\.)\s", previous)) or previous.startswith("  ")
    return False


def commands(block: Block) -> list[Command]:
    """Each command of a shell block; comment lines and blank lines are none."""
    found, pending, start = [], [], 0
    for number, line in enumerate(block.lines):
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        pending.append(line.strip())
        if line.rstrip().endswith("\\"):
            pending[-1] = pending[-1].rstrip()[:-1].rstrip()
            continue
        found.append(Command(" ".join(pending), f"{block.where.rsplit(':', 1)[0]}:"
                                                f"{block.line + start}"))
        pending = []
    return found


def lines_like_commands(block: Block) -> list[str]:
    """The lines of a block that is not a ```sh block that start as a command would: a program on
    this machine's PATH or a shell builtin, a path to one (./, .venv/), or a variable assignment
    before one."""
    found, continued = [], False
    for line in block.lines:
        if not continued and _starts_like_a_command(line.strip().rstrip("\\")):
            found.append(line.strip())
        continued = line.rstrip().endswith("\\")
    return found


def _starts_like_a_command(line: str) -> bool:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return False
    word = words[0] if words else ""
    return bool(word and (ASSIGNMENT.match(word) or word.startswith(("./", ".venv/"))
                          or word in SHELL_BUILTINS or shutil.which(word)))
