"""How the health check finds what to answer for: the `python -m app COMMAND` of a command line,
as supervisord starts a program (through prefix_output) and as a one-program container runs it;
and TensorBoard's settings from its own command line, which may carry the appliance's --set."""
from __future__ import annotations

import subprocess
import sys

import pytest

from app import config as configuration
from app.runtime import health

COMMAND_LINES = {
    "supervised": (["/opt/venv/bin/python", "-m", "app.runtime.prefix_output", "tensorboard",
                    "/opt/venv/bin/python", "-m", "app", "tensorboard", "--set", "a.b=c"],
                   ("tensorboard", ["--set", "a.b=c"])),
    "alone": (["python3", "-m", "app", "train"], ("train", [])),
    "not the app": (["supervisord", "--nodaemon", "-m", "apps"], None),
    "a shell": (["bash"], None),
}


@pytest.mark.parametrize("command_line, found", COMMAND_LINES.values(), ids=list(COMMAND_LINES))
def test_the_app_command_of_a_command_line(command_line, found):
    assert health.app_command(command_line) == found


def test_tensorboard_is_asked_with_the_settings_of_its_own_command_line():
    # A process whose command line reads as the supervised TensorBoard's, given the appliance's
    # --set, as /proc shows it (python -c takes the rest as its own arguments).
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "-m", "app", "tensorboard",
         "--set", "tensorboard.port=7007", "--set=tensorboard.password=from its arguments"],
        stdin=subprocess.PIPE)
    try:
        own = configuration.load(None, [], {})
        settings = health.config_of(stand_in.pid, own).tensorboard
    finally:
        stand_in.communicate(b"")
    assert (settings.port, settings.password) == (7007, "from its arguments")
    assert health.config_of(stand_in.pid, own) is own, "a process gone: the check's own config"
