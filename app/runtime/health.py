"""`python -m app health`: is the appliance doing what it should? Exit 0 if so, 1 if not.

Meant for a container health check (`HEALTHCHECK CMD entrypoint.sh health`) and for people:
it asks supervisord how each program is, over the control socket with supervisor's own XML-RPC
client, and asks TensorBoard for its front page. Everything found wrong is printed, one line each.

Healthy means:
  train        RUNNING, or EXITED with status 0 (it reached train.max_steps)
  eval         RUNNING, or EXITED with status 0 (it evaluated the checkpoint at max_steps)
  tensorboard  RUNNING, and http://127.0.0.1:<tensorboard.port>/ answers 200 (given the password,
               when tensorboard.password or password_file sets one)
A train that EXITED 3 (diverged) or 2 (bad input) is deliberately not restarted, and unhealthy.
"""
from __future__ import annotations

import base64
import os
import socket
import urllib.error
import urllib.request
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport

from app.exit_codes import ExitCode
from app.tensorboard.server import read_password

# The one name for the socket's location: app/runtime/supervisord.conf reads it, entrypoint.sh gives
# it its default. Deliberately not CIFAR10_*: those are config overrides (CIFAR10_TRAIN_MAX_STEPS).
SOCKET_VARIABLE = "APPLIANCE_SUPERVISOR_SOCKET"
# The socket's password, which entrypoint.sh makes at each start and keeps beside the socket.
PASSWORD_VARIABLE = "APPLIANCE_SUPERVISOR_PASSWORD"
SUPERVISOR_USER = "appliance"
PROGRAMS_THAT_MAY_FINISH = ("train", "eval")
PROGRAMS_THAT_MUST_RUN = ("tensorboard",)
TIMEOUT_SECS = 5
# What an exit that supervisord does not answer with a restart means; the program's last lines in
# the container's log say more.
MEANINGS = {
    ExitCode.BAD_INPUT: " (a bad configuration or input, or GPUs given that TensorFlow cannot "
                        "use; see its log)",
    ExitCode.DIVERGED: " (training diverged: the loss became NaN)",
}


def main(config) -> int:
    socket_path = os.environ.get(SOCKET_VARIABLE)
    if not socket_path:
        print(f"unhealthy: {SOCKET_VARIABLE} is not set, so supervisord's socket is unknown "
              "(run `entrypoint.sh health`, which sets it)")
        return ExitCode.UNHEALTHY
    socket.setdefaulttimeout(TIMEOUT_SECS)  # a hung supervisord must not hang the health check
    problems = program_problems(socket_path) + tensorboard_problems(
        config.tensorboard.port, read_password(config.tensorboard))
    for problem in problems:
        print(f"unhealthy: {problem}")
    if problems:
        return ExitCode.UNHEALTHY
    print(f"healthy: train, eval and tensorboard as expected; TensorBoard answers on port "
          f"{config.tensorboard.port}")
    return ExitCode.DONE


def program_problems(socket_path: str) -> list[str]:
    try:
        processes = supervisor_proxy(socket_path).supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error) as error:
        return [f"cannot ask supervisord at {socket_path}: {error}"]
    by_name = {process["name"]: process for process in processes}
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


def tensorboard_problems(port: int, password: str | None) -> list[str]:
    url = f"http://127.0.0.1:{port}/"
    request = urllib.request.Request(url)
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
