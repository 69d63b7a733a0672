"""A user who is not root, typing the README's and docs/'s commands as written into one shell, in a
checkout of their own, with the real Docker engine of the tests' own (the user is in its group,
as in the `docker` group), or with none (engine None: native commands only).

    user_venv(checkout / ".venv")     what `make install` makes, in seconds
    user = NewUser(home, checkout, uid, gid, engine)
    outcome = user.type(command)      one that ends by itself: run to its end
    user.start(command, sign)         one that keeps running (`up`, `make run`): in a terminal of
                                      its own, until `sign` shows; stop_all() sends it Ctrl-C
    user.clean_tmp()                  at the end: what its programs left in /tmp

The shell: HOME of the user's own, PATH, the engine's socket as DOCKER_HOST and the docker CLI's
plugins in ~/.docker/cli-plugins (with an engine), and whatever the user exports.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.docker_engine import PLUGINS, DockerEngine, plugin_path
from tests.harness.waiting import GaveUp, wait_until

COMMAND_TIMEOUT_SECS = 900     # a build from scratch included
STOP_WITHIN_SECS = 90          # Ctrl-C to gone: compose's stop grace (30 s) and some
# The Debian Python of the same minor version as the tests' (a venv of root's own Python would
# not run for another user when it lives under /root).
SYSTEM_PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


def user_venv(venv: Path) -> None:
    """What `make install` makes, made in seconds: a venv of the system's Python (one the user
    can run) that finds this checkout's installed packages, and the mark that it is installed."""
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages"
    (site / "checkout-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (venv / ".installed").touch()


@dataclass
class Outcome:
    exit_code: int | None      # None while it runs, or when it had to be killed
    output: str
    seconds: float


@dataclass
class Running:
    command: str
    process: subprocess.Popen
    log: Path
    started: float
    outcome: Outcome | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class NewUser:
    home: Path
    checkout: Path
    uid: int
    gid: int
    engine: DockerEngine | None
    exported: dict[str, str] = field(default_factory=dict)
    running: list[Running] = field(default_factory=list)
    typed: int = 0

    def __post_init__(self):
        if self.engine:
            plugins = self.home / ".docker" / "cli-plugins"
            plugins.mkdir(parents=True, exist_ok=True)
            for plugin in PLUGINS:
                if found := plugin_path(plugin):
                    (plugins / plugin).symlink_to(found)
            # The engine's socket, as a docker group's member reaches it.
            os.chmod(self.engine.folder, 0o711)
            os.chown(self.engine.socket, 0, self.gid)
            os.chmod(self.engine.socket, 0o660)
        self._give_to_user(self.home)
        self._give_to_user(self.checkout)

    def _give_to_user(self, folder: Path) -> None:
        if os.geteuid() != 0:
            return
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, self.uid, self.gid)

    def environment(self) -> dict[str, str]:
        engine = {"DOCKER_HOST": f"unix://{self.engine.socket}"} if self.engine else {}
        return {"HOME": str(self.home), "USER": "newcomer", "LANG": "C.UTF-8",
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), **engine,
                **self.exported}

    def _popen(self, command: str, log: Path, extra: str = "") -> subprocess.Popen:
        as_user = {"user": self.uid, "group": self.gid, "extra_groups": []} \
            if os.geteuid() == 0 else {}
        with log.open("ab") as sink:
            return subprocess.Popen(
                ["bash", "-c", command + extra], cwd=self.checkout, env=self.environment(),
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_as_in_a_terminal, **as_user)

    def _log(self) -> Path:
        """The terminal's output, the user's own file: a program that opens /dev/stdout again
        (supervisord's logs do) must be able to, as it can a terminal."""
        self.typed += 1
        log = self.home / f"terminal-{self.typed}.log"
        log.touch()
        if os.geteuid() == 0:
            os.chown(log, self.uid, self.gid)
        return log

    def type(self, command: str, timeout: float = COMMAND_TIMEOUT_SECS) -> Outcome:
        """Runs `command` to its end. An `export` keeps its variables for what follows."""
        log, started = self._log(), time.monotonic()
        exports = self.home / f"exported-{self.typed}"
        extra = f"\nenv -0 > {exports}" if command.startswith("export ") else ""
        process = self._popen(command, log, extra)
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            exit_code = None
        if extra and exit_code == 0:
            before = self.environment()
            after = dict(entry.split("=", 1) for entry in
                         exports.read_text().split("\0") if "=" in entry)
            self.exported.update({name: value for name, value in after.items()
                                  if before.get(name) != value and name != "_"
                                  and name not in ("SHLVL", "PWD", "OLDPWD")})
        return Outcome(exit_code, log.read_text(errors="replace"), time.monotonic() - started)

    def start(self, command: str, sign, within_secs: float) -> Running:
        """Starts `command` as in a terminal of its own and waits until sign(output) is true;
        GaveUp (with its output) when it is not within `within_secs`, or when it ends first."""
        log = self._log()
        running = Running(command, self._popen(command, log), log, time.monotonic())
        self.running.append(running)

        def shown() -> bool:
            if running.process.poll() is not None:
                raise GaveUp(f"it ended (exit {running.process.returncode}) before it showed "
                             f"what it should")
            return sign(running.output())
        try:
            wait_until(shown, within_secs, "the sign that it works")
        except GaveUp as gave_up:
            self.stop(running)
            raise GaveUp(f"{gave_up}; its output:\n{running.output()[-6000:]}") from None
        return running

    def stop(self, running: Running) -> Outcome:
        """Ctrl-C in its terminal (SIGINT to its process group), as a user stops it."""
        if running.outcome is None:
            if running.process.poll() is None:
                os.killpg(running.process.pid, signal.SIGINT)
            try:
                exit_code = running.process.wait(timeout=STOP_WITHIN_SECS)
            except subprocess.TimeoutExpired:
                _kill(running.process)
                exit_code = None
            running.outcome = Outcome(exit_code, running.output(),
                                      time.monotonic() - running.started)
        self.running.remove(running)
        return running.outcome

    def stop_all(self) -> list[Outcome]:
        return [self.stop(running) for running in list(self.running)]

    def clean_tmp(self) -> list[Path]:
        """Takes away what the user's programs left in /tmp (`make run`'s supervisord keeps its
        socket's password file there); only as root, when the user is a uid of its own."""
        if os.geteuid() != 0:
            return []
        left = [path for path in Path(tempfile.gettempdir()).iterdir()
                if path.lstat().st_uid == self.uid]
        for path in left:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return left


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a shell started in the background (nohup ... &, a CI
    runner's) passes SIGINT on ignored, and Python, make and supervisord then keep ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)
