"""Exit codes as supervisord, the entrypoint and a user see them, and the commands the entrypoint
passes on: both told once, in app/, and checked here against the files that cannot import them."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from app.exit_codes import NOT_RESTARTED, ExitCode
from tests.harness.environment import REPO_ROOT, app_environment

SUPERVISORD_CONF = REPO_ROOT / "app" / "runtime" / "supervisord.conf"


def programs_exit_codes() -> dict[str, str]:
    """Each supervised program's `exitcodes=` line (supervisord's default 0 where it has none)."""
    codes, program = {}, None
    for line in SUPERVISORD_CONF.read_text().splitlines():
        if match := re.fullmatch(r"\[program:(\w+)\]", line):
            program = match[1]
            codes[program] = "0"
        elif program and (match := re.fullmatch(r"exitcodes=([\d,]+)", line)):
            codes[program] = match[1]
    return codes


@pytest.mark.parametrize("program", ["train", "eval"])
def test_supervisord_restarts_the_trainer_and_eval_on_every_code_but_done_bad_input_and_diverged(
        program):
    expected = ",".join(str(int(code)) for code in NOT_RESTARTED)
    assert programs_exit_codes()[program] == expected


def test_every_exit_code_is_its_own_and_a_crash_is_restarted():
    values = [int(code) for code in ExitCode]
    assert len(values) == len(set(values)), "two members share a number"
    assert ExitCode.CRASH not in NOT_RESTARTED
    assert ExitCode.UNHEALTHY == 1, "a container health check reads 1 as unhealthy"


def listed_commands() -> dict[str, str]:
    listing = subprocess.run([sys.executable, "-m", "app", "--commands"], cwd=REPO_ROOT,
                             env=app_environment(), capture_output=True, text=True, check=True)
    return dict(line.split() for line in listing.stdout.splitlines())


def test_the_command_list_is_the_parsers_own():
    from app.__main__ import _parser as command_line

    commands = listed_commands()
    assert list(commands) == command_line().command_names
    assert set(commands.values()) <= {"folders", "caller"}
    assert commands["train"] == "folders" and commands["predict"] == "caller"


@pytest.mark.parametrize("command", list(listed_commands()))
def test_the_entrypoint_hands_every_command_to_python_m_app(command, tmp_path):
    """What a command added to the parser gets without a change to entrypoint.sh: `--help` is
    answered by `python -m app COMMAND`, after the folders it uses were made."""
    environment = app_environment(PYTHON=sys.executable,
                                  CIFAR10_PATHS_TRAIN_DIR=str(tmp_path / "train"),
                                  CIFAR10_PATHS_DATA_DIR=str(tmp_path / "data"))
    answer = subprocess.run([str(REPO_ROOT / "entrypoint.sh"), command, "--help"], cwd=tmp_path,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert answer.returncode == ExitCode.DONE, answer.stderr
    assert answer.stdout.startswith(f"usage: python -m app {command} "), answer.stdout
    made = (tmp_path / "train").is_dir() and (tmp_path / "data").is_dir()
    assert made == (listed_commands()[command] == "folders")


def test_the_entrypoint_runs_any_other_word_as_a_program(tmp_path):
    answer = subprocess.run([str(REPO_ROOT / "entrypoint.sh"), "echo", "as", "is"], cwd=tmp_path,
                            env=app_environment(PYTHON=sys.executable), capture_output=True,
                            text=True, timeout=60)
    assert (answer.returncode, answer.stdout) == (0, "as is\n")
