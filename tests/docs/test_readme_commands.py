"""Every command of the README and of docs/, typed as written by a user who is not root, in a
clean clone of their own, page after page (README.md, then docs/ by name), into one shell:
Docker and Compose on the real Docker engine of the tests' own (the CPU flavor: the README's CPU
line writes its .env), the native ones (`make run`, `.venv/bin/python -m app ...`) on this machine.

A command is what a ```sh block of a page holds (tests/harness/docs.py); a command added to a
page later is run here without a change to this file. The runs are shortened only as the
README's quick try says, by its `export` line, which the user types first ("set these in your
shell first"). Each command is

  run          to its end, and must exit 0 (and print what EXPECTED_OUTPUT says, where it says);
  started      when it keeps running (LONG_RUNNING: `up`, `make run`, a trainer): in a terminal
               of its own until it shows that it works (TensorBoard answering and an eval result,
               a checkpoint saved); then stopped with Ctrl-C, a trainer at once, an appliance
               when the next one starts or the page ends, and it must end within 90 s;
  only checked when it cannot run here (ONLY_CHECKED: a GPU, the internet, TensorFlow Serving's
               image, a second machine, a cluster, this test suite itself), with the reason and
               what of it is checked instead: `docker run` as `docker create` (every flag parsed,
               the image and its name found), the shell's parse of it, the files it names.

The user's ./photos (the README's "image files of your own") holds one PNG.
"""
from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.harness import docs, log_lines
from tests.harness.environment import REPO_ROOT
from tests.harness.figures import record
from tests.harness.image import clean_checkout, compose_shell
from tests.harness.new_user import NewUser, Outcome, user_venv
from tests.harness.waiting import GaveUp

pytestmark = pytest.mark.container

USER_ID = 1234          # not root, and not a uid the image knows
TENSORBOARD = "http://localhost:6006/"
APPLIANCE_WITHIN_SECS = 420
PROGRAM_WITHIN_SECS = 300


# -- what a command shows when it works -----------------------------------------------------

def tensorboard_answers() -> bool:
    """Anything HTTP on the README's address: 200, or 401 behind a password."""
    try:
        with urllib.request.urlopen(TENSORBOARD, timeout=3):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def appliance_works(output: str) -> bool:
    return "precision @ 1 = " in output and tensorboard_answers()


def checkpoint_saved(output: str) -> bool:
    return bool(log_lines.SAVED.search(output) or re.search(r"saved model\.ckpt-\d+", output))


def tensorboard_works(output: str) -> bool:
    return tensorboard_answers()


def a_program_s_line(output: str) -> bool:
    return bool(re.search(r"\| (train|eval|tensorboard|data) \| ", output))


@dataclass(frozen=True)
class LongRunning:
    pattern: str
    sign: object            # output -> bool
    stays: bool             # an appliance: up until the next one starts or the page ends
    alone: bool             # it stops what runs first (the port, the run, the data it holds)
    within_secs: float


LONG_RUNNING = [
    LongRunning(r"\bdocker compose\b.* up\b", appliance_works, True, True, APPLIANCE_WITHIN_SECS),
    LongRunning(r"^make run$", appliance_works, True, True, APPLIANCE_WITHIN_SECS),
    # Beside the appliance ("while the appliance runs, train a second run beside it").
    LongRunning(r"\bdocker compose run\b.* train$", checkpoint_saved, False, False,
                PROGRAM_WITHIN_SECS),
    LongRunning(r"\bdocker compose logs -f$", a_program_s_line, False, False, 60),
    # One program natively, on the run and port the appliance uses.
    LongRunning(r"-m app train$", checkpoint_saved, False, True, PROGRAM_WITHIN_SECS),
    LongRunning(r"-m app tensorboard$", tensorboard_works, False, True, PROGRAM_WITHIN_SECS),
]

EXPECTED_OUTPUT = {
    r" predict /images\b": r"(?m)^/images/cat\.png: \w+ \d\.\d\d",
    r"check-config --config my\.yaml$|my\.yaml:/etc/cifar10/config\.yaml:ro.* check-config$":
        r"(?m)^  batch_size: 256$",
    r"-m app eval --once$": r"precision @ 1 = ",
    r"supervisorctl status$": r"appliance:train +RUNNING",
    r"supervisorctl restart appliance:eval$": r"appliance:eval: started",
}


# -- what cannot run here, and what of it is checked ------------------------------------------

@dataclass(frozen=True)
class OnlyChecked:
    pattern: str
    reason: str
    check: object = None    # (user, command) -> what was checked; raises when it fails


def docker_create(user: NewUser, command: str) -> str:
    """The `docker run` of `command` as `docker create`, which parses every flag and finds the
    image by its name, then starts nothing."""
    run = command[command.index("docker run"):].split(" && ")[0]
    # Through the user's shell, which expands "$PWD/..." as it would for `docker run`.
    created = user.type(re.sub(r" -d\b", "", run.replace("docker run", "docker create", 1)))
    assert created.exit_code == 0, created.output
    container = created.output.split()[-1]
    user.type(f"docker rm --volumes {container}")   # and the image's anonymous volumes
    return "docker create took its flags and found the image"


def gpu_reserved(user: NewUser, command: str) -> str:
    config = user.type("docker compose config")
    assert config.exit_code == 0, config.output
    assert "driver: nvidia" in config.output and "gpu" in config.output, config.output
    return "docker compose config: the appliance reserves an NVIDIA GPU"


def make_knows_it(user: NewUser, command: str) -> str:
    dry = user.type("make -n test")
    assert dry.exit_code == 0 and "-m pytest" in dry.output, dry.output
    return "make -n test runs pytest"


def an_export_to_serve(user: NewUser, command: str) -> str:
    versions = sorted((user.checkout / "cifar10_train" / "default" / "export").glob("[0-9]*"))
    assert versions and all((version / "saved_model.pb").is_file() for version in versions), \
        versions
    return f"its base path holds {len(versions)} SavedModel version(s)"


def named_in_the_manifests(user: NewUser, command: str) -> str:
    manifests = "\n".join(path.read_text() for path in (REPO_ROOT / "docker" / "k8s").glob("*"))
    names = {"-k docker/k8s": "kind: Kustomization", "tfjob cifar10-train": "name: cifar10-train",
             "cifar10-train-chief-0": "kind: TFJob",
             "service/cifar10-tensorboard": "name: cifar10-tensorboard"}
    found = [shown for named, shown in names.items() if named in command]
    assert found and all(shown in manifests for shown in found), command
    return "docker/k8s/ holds what it names"


ONLY_CHECKED = [
    OnlyChecked(r"^docker compose up --build$", "an NVIDIA GPU and its Container Toolkit (the GPU "
                "flavor: no .env line yet)", gpu_reserved),
    OnlyChecked(r"^make test$", "the test suite itself (.ci/run runs it from a clean clone)",
                make_knows_it),
    OnlyChecked(r"/shared/", "two machines sharing a folder (/shared)"),
    OnlyChecked(r"--gpus all", "an NVIDIA GPU and its Container Toolkit"),
    OnlyChecked(r"^docker build -t cifar10-appliance \.$", "the GPU flavor: 3 GB of CUDA wheels "
                "and a 6.9 GB image, more than CI's time (the CPU flavor's build runs)"),
    OnlyChecked(r"^sudo ", "root on a GPU host, and NVIDIA's nvidia-ctk"),
    OnlyChecked(r"^ssh ", "a second machine to tunnel from"),
    OnlyChecked(r"cifar-10-binary\.tar\.gz", "the real CIFAR-10 archive, from the internet"),
    OnlyChecked(r"tensorflow/serving", "TensorFlow Serving's image, from Docker Hub, which no "
                "registry here serves", an_export_to_serve),
    OnlyChecked(r"localhost:8501", "the TensorFlow Serving above, answering"),
    OnlyChecked(r"^kubectl ", "a Kubernetes cluster with Kubeflow's training operator",
                named_in_the_manifests),
]


def matching(table, command: str):
    return next((entry for entry in table if re.search(entry.pattern, command)), None)


# -- the walk through every page ---------------------------------------------------------------

def every_command() -> list[docs.Command]:
    return [command for page in docs.DOC_FILES for block in docs.blocks(page) if block.is_shell
            for command in docs.commands(block)]


@dataclass
class Result:
    command: docs.Command
    how: str                 # "ran", "started", "checked"
    problem: str = ""        # empty when it did what it should
    detail: str = ""
    seconds: float = 0.0     # from typing it to the next prompt (a long-running one: to its stop)


def outcome_problem(outcome: Outcome, command: str) -> str:
    if outcome.exit_code is None:
        return f"still running after {outcome.seconds:.0f} s (killed)"
    if outcome.exit_code != 0:
        return f"exit {outcome.exit_code}"
    expected = next((wanted for pattern, wanted in EXPECTED_OUTPUT.items()
                     if re.search(pattern, command)), None)
    if expected and not re.search(expected, outcome.output):
        return f"its output lacks {expected!r}"
    return ""


class Walkthrough:
    def __init__(self, user: NewUser):
        self.user = user
        self.results: dict[str, Result] = {}
        self.started: dict[str, tuple[Result, object]] = {}   # where -> (result, Running)

    def page(self, path: Path) -> None:
        for block in docs.blocks(path):
            if block.is_shell:
                for command in docs.commands(block):
                    started = time.monotonic()
                    self.results[command.where] = self.one(command)
                    self.results[command.where].seconds = time.monotonic() - started
        self.stop(lambda running: True)

    def stop(self, which) -> None:
        for where, (result, running) in list(self.started.items()):
            if which(running) and running in self.user.running:
                outcome = self.user.stop(running)
                if outcome.exit_code is None and not result.problem:
                    result.problem = f"did not stop within 90 s of Ctrl-C:\n{outcome.output[-3000:]}"
                del self.started[where]

    def one(self, command: docs.Command) -> Result:
        text = command.bare
        if checked := matching(ONLY_CHECKED, text):
            parsed = self.user.type(f"bash -n -c {shlex.quote(text)}")
            if parsed.exit_code != 0:
                return Result(command, "checked", f"bash cannot parse it: {parsed.output}")
            try:
                what = (checked.check or (docker_create if "docker run" in text else
                                          (lambda user, command: "bash parses it")))(self.user, text)
            except AssertionError as failed:
                return Result(command, "checked", f"its check failed: {failed}")
            return Result(command, "checked", detail=f"{checked.reason}; checked: {what}")
        if long_running := matching(LONG_RUNNING, text):
            if earlier := next((r for r in self.results.values() if r.command.bare == text
                                and r.how == "started" and not r.problem), None):
                # The same command, already started as written and stopped: once is enough.
                return Result(command, "started", detail=f"as at {earlier.command.where}")
            if long_running.alone:
                self.stop(lambda running: True)
            try:
                running = self.user.start(text, long_running.sign, long_running.within_secs)
            except GaveUp as gave_up:   # and stopped
                return Result(command, "started", str(gave_up))
            result = Result(command, "started", detail=f"showed it works after "
                                                      f"{running.output().count(chr(10))} lines")
            self.started[command.where] = (result, running)
            if not long_running.stays:
                self.stop(lambda other: other is running)
            return result
        outcome = self.user.type(text)
        problem = outcome_problem(outcome, text)
        return Result(command, "ran", problem + (f"; its output:\n{outcome.output[-4000:]}"
                                                 if problem else ""))


def photo(folder: Path) -> None:
    """A picture of the user's own: a 64x48 PNG, a red square on blue."""
    folder.mkdir()
    picture = Image.new("RGB", (64, 48), (30, 60, 200))
    picture.paste((220, 30, 30), (16, 8, 48, 40))
    picture.save(folder / "cat.png")


@pytest.fixture(scope="module")
def walkthrough(docker, image) -> Walkthrough:
    # Outside pytest's temporary folders, which only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="cifar10-newcomer-"))
    folder.chmod(0o755)
    checkout = clean_checkout(folder / "cifar10-appliance")
    user_venv(checkout / ".venv")
    photo(checkout / "photos")
    home = folder / "home"
    home.mkdir()
    user = NewUser(home, checkout, USER_ID, USER_ID, docker)
    user.exported.update(compose_shell())   # a proxy's CA bundle for builds, when there is one
    walk = Walkthrough(user)
    readme = docs.DOC_FILES[0]
    try:
        for command in [c for b in docs.blocks(readme) if b.is_shell for c in docs.commands(b)
                        if c.text.startswith("export ")]:
            exported = user.type(command.text)   # "set these in your shell first"
            assert exported.exit_code == 0, exported.output
        for page in docs.DOC_FILES:
            walk.page(page)
        yield walk
    finally:
        walk.stop(lambda running: True)
        user.stop_all()
        user.clean_tmp()
        down = docker("compose", "--profile", "multi-worker", "down", "--volumes", "--timeout",
                      "0", cwd=checkout, check=False, timeout=180)
        if down.returncode != 0:
            print(f"docker compose down exited {down.returncode}:\n{down.stdout}{down.stderr}")
        # What the user's commands made for the user to keep (the data volume, the project's
        # network), whatever `down` could not take.
        docker.remove_containers(docker("ps", "--all", "--quiet").stdout.split())
        docker("volume", "rm", "--force", *docker("volume", "ls", "--quiet").stdout.split(),
               check=False)
        docker("network", "prune", "--force", check=False)
        shutil.rmtree(folder)


COMMANDS = every_command()


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.where} {c.text[:60]}" for c in COMMANDS])
def test_the_command_runs_as_written(walkthrough, command):
    result = walkthrough.results[command.where]
    assert not result.problem, f"{command.where}: {command.text}\n{result.how}: {result.problem}"


def test_each_command_is_run_or_checked_for_a_reason(walkthrough):
    results = list(walkthrough.results.values())
    assert [r.command for r in results] == COMMANDS
    ran = [r for r in results if r.how in ("ran", "started")]
    checked = [r for r in results if r.how == "checked"]
    assert all(r.detail for r in checked)
    record("README and docs/ commands", f"{len(results)}: {len(ran)} run as written, "
                                        f"{len(checked)} only checked")
    for r in checked:
        print(f"only checked, {r.command.where}: {r.command.text[:70]} -- {r.detail}")
    for r in sorted(results, key=lambda r: -r.seconds)[:8]:
        print(f"{r.seconds:5.1f} s, {r.command.where}: {r.command.text[:70]}")
