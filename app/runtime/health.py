"""`python -m app health`: is the appliance doing what it should? Exit 0 if so, 1 if not.

Meant for a container health check (`HEALTHCHECK CMD entrypoint.sh health`) and for people:
it asks supervisord how each program is, over the control socket with supervisor's own XML-RPC
client, and asks TensorBoard for its front page. Everything found wrong is printed, one line each.

Healthy means:
  train        RUNNING, or EXITED with status 0 (it reached train.max_steps)
  eval         RUNNING, or EXITED with status 0 (it evaluated the checkpoint at max_steps)
  tensorboard  RUNNING, and its front page answers 200 (given the password, when
               tensorboard.password or password_file sets one)
A train that EXITED 3 (diverged) or 2 (bad input) is deliberately not restarted, and unhealthy.

A container started for one program (`docker run IMAGE train`, `eval`, `tensorboard`,
`predict`, ...) runs it as its first process, without supervisord: the check then answers for
that program alone. It is healthy while it runs (once the first process has exited, nobody asks),
and tensorboard only when it answers too.

TensorBoard is asked at the port and address, and with the password, that it runs with: its own
command line's --config and --set (which the appliance started as a whole hands to every
program), over this process's variables, which are the container's.
"""
from __future__ import annotations

import argparse
import base64
import os
import socket
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from app import config as configuration
from app.exit_codes import ExitCode
from app.tensorboard.server import read_password, reachable_address

# The one name for the socket's location: app/runtime/supervisord.conf reads it, entrypoint.sh gives
# it its default. Deliberately not CIFAR10_*: those are config overrides (CIFAR10_TRAIN_MAX_STEPS).
SOCKET_VARIABLE = "APPLIANCE_SUPERVISOR_SOCKET"
# The socket's password, which entrypoint.sh makes at each start and keeps beside the socket.
PASSWORD_VARIABLE = "APPLIANCE_SUPERVISOR_PASSWORD"
SUPERVISOR_USER = "appliance"
PROGRAMS_THAT_MAY_FINISH = ("train", "eval")
PROGRAMS_THAT_MUST_RUN = ("tensorboard",)
# What a container engine starts first when asked to (`docker run --init`, podman's --init), with
# the container's command as its one child.
INIT_PROCESSES = frozenset({"docker-init", "tini", "catatonit", "dumb-init"})
TIMEOUT_SECS = 5
# What an exit that supervisord does not answer with a restart means; the program's last lines in
# the container's log say more.
MEANINGS = {
    ExitCode.BAD_INPUT: " (a bad configuration or input, or GPUs given that TensorFlow cannot "
                        "use; see its log)",
    ExitCode.DIVERGED: " (training diverged: the loss became NaN)",
}


def main(config) -> int:
    socket.setdefaulttimeout(TIMEOUT_SECS)  # a hung supervisord must not hang the health check
    if alone := program_alone():
        pid, command = alone
        if command != "tensorboard":
            return _answer([], f"this container runs {command} alone (no supervisord), and it "
                               f"is running")
        settings = config_of(pid, config).tensorboard
        return _answer(tensorboard_problems(settings), f"this container runs tensorboard alone "
                                                       f"(no supervisord); it answers on port "
                                                       f"{settings.port}")
    socket_path = os.environ.get(SOCKET_VARIABLE)
    if not socket_path:
        return _answer([f"{SOCKET_VARIABLE} is not set, so supervisord's socket is unknown (run "
                        f"`entrypoint.sh health`, which sets it)"], "")
    try:
        processes = {process["name"]: process for process in
                     supervisor_proxy(socket_path).supervisor.getAllProcessInfo()}
        problems = program_problems(processes)
    except (OSError, xmlrpc.client.Error) as error:
        processes, problems = {}, [f"cannot ask supervisord at {socket_path}: {error}"]
    tensorboard = processes.get("tensorboard", {}).get("pid")
    settings = (config_of(tensorboard, config) if tensorboard else config).tensorboard
    return _answer(problems + tensorboard_problems(settings),
                   f"train, eval and tensorboard as expected; TensorBoard answers on port "
                   f"{settings.port}")


def _answer(problems: list[str], healthy: str) -> int:
    for problem in problems:
        print(f"unhealthy: {problem}")
    if problems:
        return ExitCode.UNHEALTHY
    print(f"healthy: {healthy}")
    return ExitCode.DONE


def program_problems(by_name: dict[str, dict]) -> list[str]:
    """What is wrong with the programs, from supervisord's process info by program name."""
    problems = []
    for name in PROGRAMS_THAT_MAY_FINISH + PROGRAMS_THAT_MUST_RUN:
        process = by_name.get(name)
        if process is None:
            problems.append(f"{name}: not a program of this supervisord")
            continue
        state = process["statename"]
        if state == "RUNNING":
            continue
        if (name in PROGRAMS_THAT_MAY_FINISH and state == "EXITED"
                and process["exitstatus"] == ExitCode.DONE):
            continue
        detail = (f" with status {process['exitstatus']}{MEANINGS.get(process['exitstatus'], '')}"
                  if state == "EXITED" else "")
        if process.get("spawnerr"):
            detail += f" ({process['spawnerr']})"
        problems.append(f"{name}: {state}{detail}")
    return problems


def supervisor_proxy(socket_path: str) -> xmlrpc.client.ServerProxy:
    # The URL's host is ignored: the transport talks to the unix socket.
    transport = SupervisorTransport(SUPERVISOR_USER, supervisor_password(socket_path),
                                    serverurl=f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_password(socket_path: str) -> str:
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    try:
        with open(f"{socket_path}.password", encoding="utf-8") as secret:
            return secret.read().strip()
    except OSError:
        return ""  # supervisord will refuse, and the problem says so


# -- the programs' own command lines ----------------------------------------------------------

def program_alone() -> tuple[int, str] | None:
    """The pid and command of the `python -m app COMMAND` that this container runs as its first
    process (or as the one child of an init the engine put first); None when it runs anything
    else (supervisord, a shell), and natively, where the first process is the machine's init."""
    pid = 1
    while (command_line := _command_line(pid)) is not None:
        if found := app_command(command_line):
            return (pid, found[0]) if found[0] != "health" else None
        children = _children(pid)
        if Path(command_line[0]).name not in INIT_PROCESSES or len(children) != 1:
            return None
        pid = children[0]
    return None


def config_of(pid: int, config):
    """The config the program `pid` runs with: its command line's --config and --set over this
    process's variables; `config` (the check's own) when it has neither or they cannot be read."""
    found = app_command(_command_line(pid) or [])
    if not found:
        return config
    options = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    options.add_argument("--config")
    options.add_argument("--set", dest="overrides", action="append", default=[])
    given, _ = options.parse_known_args(found[1])
    if not given.config and not given.overrides:
        return config
    try:
        return configuration.load(given.config, given.overrides)
    except configuration.ConfigError:
        return config  # the program would not have started with it


def app_command(command_line: list[str]) -> tuple[str, list[str]] | None:
    """The command and its arguments of a command line that runs `python -m app COMMAND ...`,
    itself or through app/runtime/prefix_output.py (`... -m app.runtime.prefix_output NAME
    python -m app COMMAND ...`, as supervisord starts a program)."""
    for index in range(len(command_line) - 2):
        if command_line[index:index + 2] == ["-m", "app"]:
            return command_line[index + 2], command_line[index + 3:]
    return None


def _command_line(pid: int) -> list[str] | None:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return None
    return [argument.decode(errors="replace") for argument in arguments] or None


def _children(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in children.split()]


# -- TensorBoard ------------------------------------------------------------------------------

def tensorboard_problems(settings) -> list[str]:
    host = reachable_address(settings.address)
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/"
    request = urllib.request.Request(url)
    password = read_password(settings)
    if password:
        token = base64.b64encode(f"health:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as response:
            if response.status == 200:
                return []
            return [f"tensorboard: {url} answered HTTP {response.status}"]
    except urllib.error.HTTPError as error:
        return [f"tensorboard: {url} answered HTTP {error.code}"]
    except (OSError, urllib.error.URLError) as error:
        return [f"tensorboard: no answer from {url}: {getattr(error, 'reason', error)}"]
