"""What the README and docs/ name exists as they name it: every config key (`section.key`, and
its CIFAR10_SECTION_KEY variable), every log line they quote (a line of the table of patterns,
tests/harness/log_lines.py), every file and folder of the repository; and every command in them
is where tests/docs/test_readme_commands.py finds it, in a ```sh block."""
from __future__ import annotations

import dataclasses
import re

import pytest

from app import compat
from app.config import schema
from tests.harness import docs, log_lines
from tests.harness.environment import REPO_ROOT

PAGES = {str(page.relative_to(REPO_ROOT)): page for page in docs.DOC_FILES}
KEY = re.compile(r"`(?P<key>(?P<section>[a-z_]+)\.(?P<name>[a-z_]+))(?:[:=][^`]*)?`")
VARIABLE = re.compile(r"\bCIFAR10_(?P<name>[A-Z0-9_]+)\b")
# Paths of this repository, as the docs name them in code spans and links.
REPO_PATH = re.compile(r"(?:`|\]\()(?:\.\./)?(?P<path>(?:app|bench|docker|docs|tests|\.ci)/"
                       r"[\w./-]*|(?:Dockerfile|Makefile|entrypoint\.sh|compose\.yaml|README\.md)"
                       r")(?:[`)#])")
# What a program prints, where a page quotes it in a block: each is one of log_lines' patterns.
QUOTED_LINE = re.compile(r"^(?:(?:train|eval|tensorboard|data) \| |error: |config error: )")
PATTERNS = [value for value in vars(log_lines).values() if isinstance(value, re.Pattern)]
VARIABLES_NOT_KEYS = {"CONFIG"}   # CIFAR10_CONFIG names the config file


def keys() -> set[str]:
    return {f"{section}.{field.name}" for section, section_type in schema.SECTIONS.items()
            for field in dataclasses.fields(section_type)}


def text_of(page) -> str:
    return page.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PAGES)
def test_every_config_key_named_exists(name):
    known, old = keys(), set(compat.RENAMED_KEYS)
    named = {match["key"] for match in KEY.finditer(text_of(PAGES[name]))
             if match["section"] in schema.SECTIONS or match["section"] in old}
    assert named - known - old == set()


@pytest.mark.parametrize("name", PAGES)
def test_every_variable_named_is_a_key_s(name):
    known = {key.replace(".", "_").upper() for key in keys()} | VARIABLES_NOT_KEYS
    old = {key.replace(".", "_").upper() for key in compat.RENAMED_KEYS}
    named = {match["name"] for match in VARIABLE.finditer(text_of(PAGES[name]))}
    assert named - known - old == set()


@pytest.mark.parametrize("name", PAGES)
def test_every_log_line_quoted_is_one_the_tests_read(name):
    quoted = [line for block in docs.blocks(PAGES[name]) if not block.is_shell
              for line in block.lines if QUOTED_LINE.match(line)]
    unknown = [line for line in quoted if not any(pattern.match(line) for pattern in PATTERNS)]
    assert unknown == []


@pytest.mark.parametrize("name", PAGES)
def test_every_file_and_folder_named_exists(name):
    page = PAGES[name]
    named = {match["path"].rstrip(".") for match in REPO_PATH.finditer(text_of(page))}
    missing = [path for path in named if "<" not in path and "*" not in path
               and not (REPO_ROOT / path).exists() and not (page.parent / path).exists()]
    assert missing == []


@pytest.mark.parametrize("name", PAGES)
def test_every_command_is_in_a_sh_block(name):
    outside = {block.where: docs.lines_like_commands(block)
               for block in docs.blocks(PAGES[name]) if not block.is_shell}
    assert {where: lines for where, lines in outside.items() if lines} == {}
