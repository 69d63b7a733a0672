"""The compose profile `multi-worker` as a user runs it: one `up` of the job's four services (the
trainers `chief` and `worker`, `eval`, `tensorboard`) on the real Docker engine, CPU flavor, from a
folder of its own, and the faults a job across machines meets, each timed from the containers'
own log lines.

    kill_9(service)        SIGKILL to the container's first process from the host, as a machine
                           that dies does it (`docker kill` would count as a person's stop, which
                           Docker's restart policy leaves alone)
    cut_off(service)       `docker network disconnect` until the other trainer names it as lost,
                           then a few seconds more; `docker network connect` with its service
                           name again, as a network that comes back
    stop_trainers_and_start()  `docker compose stop chief worker`, then `start` again

The trainers run as two hosts do: each container has its own hostname and network namespace,
they find each other by service name on the project's network, and they share the train_dir as
a ReadWriteMany claim is shared.
"""
from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.volume.results import read_results
from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed
from tests.harness.containers import Container
from tests.harness.image import COMPOSE_CPU_FILES, compose_shell
from tests.harness.ports import free_port
from tests.harness.waiting import GaveUp, wait_until

PROJECT = "cifar10-appliance"   # docker/compose.yaml's `name:`
NETWORK = f"{PROJECT}_default"
TRAINERS = ("chief", "worker")
SERVICES = (*TRAINERS, "eval", "tensorboard")
PROFILE = (*COMPOSE_CPU_FILES, "--profile", "multi-worker")
RUN = "default"
# What a user would set in their shell to try the job in a few minutes: the synthetic set, small;
# a checkpoint every 20 steps, a progress line every second (the step reached at a fault),
# eval looking every 2 s over 200 test images.
SMALL_JOB = {
    "CIFAR10_DATA_SOURCE": "synthetic",
    "CIFAR10_DATA_SYNTHETIC_TRAIN_EXAMPLES": "2000",
    "CIFAR10_DATA_SYNTHETIC_TEST_EXAMPLES": "200",
    "CIFAR10_TRAIN_MAX_STEPS": "1000000",
    "CIFAR10_TRAIN_BATCH_SIZE": "16",
    "CIFAR10_TUTORIAL_INITIAL_LEARNING_RATE": "0.05",
    "CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS": "20",
    "CIFAR10_RUNTIME_SUMMARY_EVERY_STEPS": "20",
    "CIFAR10_RUNTIME_LOG_EVERY_SECS": "1",
    "CIFAR10_EVAL_EVERY_SECS": "2",
    "CIFAR10_EVAL_NUM_EXAMPLES": "200",
}
HOST_OWNER = 1234  # the train_dir's owner, as a user's own uid: not one the image knows
STARTED_WITHIN_SECS = 300
RECOVERED_WITHIN_SECS = 240
LOST_WITHIN_SECS = 120
CUT_OFF_BEYOND_LOSS_SECS = 5
# The last line of a Python traceback: an error nothing caught.
ERROR_RAISED = re.compile(r"^[\w.]+(?:Error|Exception): ")
LOST_CONTACT = re.compile(r"error: lost contact with another worker of the job "
                          r"(?:\((?P<lost>[^)]+)\) )?after step (?P<step>\d+)")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def timestamped(logs: str) -> list[tuple[datetime.datetime, str]]:
    """`docker logs --timestamps` lines as (when, line)."""
    lines = []
    for line in logs.splitlines():
        stamp, _, text = line.partition(" ")
        try:  # RFC 3339 with nanoseconds: Python takes microseconds
            when = datetime.datetime.fromisoformat(stamp[:26] + "+00:00")
        except ValueError:
            continue
        lines.append((when, text))
    return lines


@dataclass
class Fault:
    """One fault and what the job did about it."""
    name: str
    at: datetime.datetime
    checkpoint_before: int | None   # the chief's newest checkpoint when it struck
    step_before: int                # the last step a trainer printed before it
    restarts_before: dict
    lost_said: dict = field(default_factory=dict)   # trainer -> its lost-contact line
    ended_with: dict = field(default_factory=dict)  # trainer -> its first error line after it
    resumed_from: dict = field(default_factory=dict)  # trainer -> the checkpoint's step
    recovered_after_secs: float | None = None
    restarts_after: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def steps_lost(self) -> int | None:
        resumed = self.resumed_from.get("chief")
        return None if resumed is None else max(0, self.step_before - resumed)

    @property
    def recovered_by_itself(self) -> bool:
        return self.recovered_after_secs is not None

    def row(self) -> dict:
        return {"fault": self.name, "recovered by itself": self.recovered_by_itself,
                "seconds to recover": None if self.recovered_after_secs is None
                else round(self.recovered_after_secs, 1),
                "steps lost": self.steps_lost, "resumed from": self.resumed_from,
                "lost-contact lines": self.lost_said, "ended with": self.ended_with,
                # `docker compose start` counts afresh: a stop has no restarts of Docker's.
                "restarts": {name: max(0, self.restarts_after.get(name, 0) - count)
                             for name, count in self.restarts_before.items()},
                **self.extra}


class TwoHostJob:
    def __init__(self, docker, folder: Path, shell: dict | None = None):
        self.docker = docker
        self.folder = folder
        self.port = free_port()
        self.shell = {**SMALL_JOB, **(shell or {}), "TENSORBOARD_PORT": str(self.port),
                      "PUID": str(HOST_OWNER), "PGID": str(HOST_OWNER), **compose_shell()}
        self.output = folder.parent / f"{folder.name}-up.log"
        self.up: subprocess.Popen | None = None
        self.faults: list[Fault] = []

    @classmethod
    def in_copy_of(cls, docker, checkout: Path, parent: Path, **options) -> TwoHostJob:
        """The job from a copy of the checkout of its own (another test's `cifar10_train` is not
        its business), with an empty train_dir of HOST_OWNER's."""
        folder = parent / "cifar10-appliance"
        shutil.copytree(checkout, folder, ignore=shutil.ignore_patterns("cifar10_train"))
        (folder / "cifar10_train").mkdir()
        os.chown(folder / "cifar10_train", HOST_OWNER, HOST_OWNER)
        return cls(docker, folder, **options)

    @property
    def train_dir(self) -> Path:
        return self.folder / "cifar10_train"

    @property
    def run_folder(self) -> Path:
        return self.train_dir / RUN

    # -- compose, as typed ----------------------------------------------------------------------

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return self.docker("compose", *PROFILE, *args, cwd=self.folder, env=self.shell,
                           timeout=timeout, check=False)

    def start_up(self, services: tuple[str, ...] = SERVICES) -> None:
        """The one command: `up --build` of the four services (or of `services`), in the
        foreground."""
        self.up = self.docker.popen("compose", *PROFILE, "up", "--build", *services,
                                    output=self.output, cwd=self.folder, env=self.shell)
        wait_until(lambda: all(self.name_of(service) for service in services)
                   or self._up_exited(), STARTED_WITHIN_SECS, "the job's containers", 1)
        for service in services:
            wait_until(lambda: self.container(service).is_running(), 60,
                       f"{service}'s container to run", 0.5)

    def _up_exited(self) -> bool:
        if self.up.poll() is not None:
            raise GaveUp(f"`compose up` exited {self.up.returncode}:\n"
                         f"{self.output.read_text(errors='replace')[-4000:]}")
        return False

    def name_of(self, service: str) -> str:
        return self.compose("ps", "--all", "--quiet", service).stdout.strip()

    def container(self, service: str) -> Container:
        return Container(self.docker, self.name_of(service))

    def down(self) -> None:
        """Removes the project's containers, network and data volume; `up` then ends by itself
        (stopped first, it would give each container its 30 s grace)."""
        self.compose("down", "--volumes", "--timeout", "0", timeout=300)
        if self.up:
            try:
                self.up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.wait()

    # -- what a user looks at -----------------------------------------------------------------

    def logs(self, service: str, since: datetime.datetime | None = None
             ) -> list[tuple[datetime.datetime, str]]:
        """The service's log lines over all its restarts (Docker keeps one log per container),
        with their times; from `since` on when given."""
        options = ["--timestamps"]
        if since:
            options += ["--since", since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")]
        return timestamped(self.docker.stream("logs", *options, self.name_of(service),
                                              timeout=60)[1])

    def text(self, service: str, since: datetime.datetime | None = None) -> str:
        return "\n".join(line for _, line in self.logs(service, since))

    def state(self, service: str) -> dict:
        return self.docker.inspect("container", self.name_of(service))

    def restarts(self) -> dict[str, int]:
        return {service: self.state(service)["RestartCount"] for service in SERVICES}

    def last_step(self) -> int:
        """The highest step either trainer printed."""
        return max([0, *(step for service in TRAINERS
                         for step in log_lines.steps(self.text(service)))])

    def newest_checkpoint(self) -> int | None:
        return newest_listed(self.run_folder)

    def evaluations(self) -> int:
        return len(read_results(self.run_folder / "eval"))

    def wait_for_checkpoint_beyond(self, step: int | None, timeout: float = 300) -> int:
        def beyond():
            for service in TRAINERS:
                if not self.state(service)["State"]["Running"] and \
                        self.state(service)["State"]["Status"] == "exited":
                    raise GaveUp(f"{service} exited and was not restarted:\n"
                                 f"{self.text(service)[-4000:]}")
            newest = self.newest_checkpoint()
            return newest if newest is not None and (step is None or newest > step) else None
        return wait_until(beyond, timeout, f"a checkpoint beyond step {step}", 1)

    def resumed(self, since: datetime.datetime) -> tuple[dict, datetime.datetime] | None:
        """Once both trainers said `resumed from model.ckpt-N` after `since` and the chief
        printed a step after that: each one's N, and when the chief's step line came."""
        resumed_from, when = {}, None
        for service in TRAINERS:
            lines = self.logs(service, since)
            found = [(at, int(match["step"])) for at, line in lines
                     if (match := log_lines.RESUMED.search(line))]
            if not found:
                return None
            resumed_from[service] = found[-1][1]
            if service == "chief":
                stepped = [at for at, line in lines
                           if at > found[-1][0] and log_lines.TRAIN_STEP.search(line)]
                if not stepped:
                    return None
                when = stepped[0]
        return resumed_from, when

    # -- faults ---------------------------------------------------------------------------------

    def _fault(self, name: str) -> Fault:
        return Fault(name, utc_now(), self.newest_checkpoint(), self.last_step(),
                     self.restarts())

    def _recovery(self, fault: Fault) -> Fault:
        try:
            resumed_from, when = wait_until(lambda: self.resumed(fault.at), RECOVERED_WITHIN_SECS,
                                            f"the job back after {fault.name}", 1)
            fault.resumed_from = resumed_from
            fault.recovered_after_secs = (when - fault.at).total_seconds()
        except GaveUp as gave_up:
            fault.extra["gave up"] = str(gave_up)
        for service in TRAINERS:
            # How it ended, in its own words (the lost-contact line, or another error's).
            ended = [line for _, line in self.logs(service, fault.at)
                     if line.startswith(("error: ", "config error: ")) or ERROR_RAISED.match(line)]
            if ended:
                fault.ended_with[service] = ended[0]
            said = list(LOST_CONTACT.finditer(self.text(service, fault.at)))
            if said:
                fault.lost_said[service] = said[0][0]
                # Where the job stood: the step the survivor's failed call started from.
                fault.step_before = max(fault.step_before, int(said[0]["step"]))
        fault.restarts_after = self.restarts()
        self.faults.append(fault)
        return fault

    def kill_9(self, service: str) -> Fault:
        fault = self._fault(f"kill -9 of the {service}'s container")
        os.kill(self.state(service)["State"]["Pid"], signal.SIGKILL)
        return self._recovery(fault)

    def cut_off(self, service: str, other: str = "chief") -> Fault:
        """The service's network gone until `other` names it lost, then some seconds more."""
        fault = self._fault(f"docker network disconnect of the {service}")
        container = self.name_of(service)
        self.docker("network", "disconnect", NETWORK, container)
        try:
            wait_until(lambda: LOST_CONTACT.search(self.text(other, fault.at)),
                       LOST_WITHIN_SECS, f"{other} to say it lost the {service}", 1)
            fault.extra["lost said after secs"] = round(
                (next(at for at, line in self.logs(other, fault.at)
                      if LOST_CONTACT.search(line)) - fault.at).total_seconds(), 1)
            time.sleep(CUT_OFF_BEYOND_LOSS_SECS)
        finally:
            self.docker("network", "connect", "--alias", service, NETWORK, container,
                        check=False)
            fault.extra["cut off for secs"] = round((utc_now() - fault.at).total_seconds(), 1)
        return self._recovery(fault)

    def stop_trainers_and_start(self) -> Fault:
        """`docker compose stop chief worker`, timed (eval and TensorBoard go on), then `docker
        compose start chief worker`."""
        fault = self._fault("docker compose stop of the trainers, then start")
        started = time.monotonic()
        stopped = self.compose("stop", *TRAINERS, timeout=120)
        fault.extra["stop secs"] = round(time.monotonic() - started, 1)
        fault.extra["stop exit"] = stopped.returncode
        fault.extra["exit codes"] = {service: self.state(service)["State"]["ExitCode"]
                                     for service in TRAINERS}
        fault.extra["stopped at"] = {}
        for service in TRAINERS:
            if match := log_lines.STOPPED_ON_REQUEST.search(self.text(service, fault.at)):
                fault.extra["stopped at"][service] = int(match["step"])
        fault.extra["newest checkpoint after stop"] = self.newest_checkpoint()
        fault.step_before = max(fault.step_before, *fault.extra["stopped at"].values(), 0)
        self.compose("start", *TRAINERS, timeout=120)
        return self._recovery(fault)

    def neighbours(self) -> dict:
        """Eval's and TensorBoard's containers as they are now, and how many checkpoints eval
        has evaluated."""
        seen = {"evaluations": self.evaluations()}
        for service in ("eval", "tensorboard"):
            state = self.state(service)
            seen[service] = {"started_at": state["State"]["StartedAt"],
                             "restarts": state["RestartCount"],
                             "running": state["State"]["Running"]}
        return seen
