"""The three programs under a real supervisord, started through entrypoint.sh as `make run` and
the container do, checked the way a user checks them: TensorBoard in a browser's place, the
files on the volume, `supervisorctl status`, the health check, the console, and stopping and
starting again.

Most tests look at one stack that has trained to the end (trained_stack, shared with
tests/browser), whose TensorBoard asks for a password; the stop-and-resume tests interrupt a stack
of their own mid-training.
"""
from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys

import pytest

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.environment import REPO_ROOT
from tests.harness.faults import bad_configs
from tests.harness.native_stack import (ENTRYPOINT, MAX_STEPS, PROGRAMS, STOP_GRACE_SECS,
                                        NativeStack, child_pids, run_in_own_session)
from tests.harness.tensorboard_api import ROUTES_THE_TABS_LOAD, ask_as_the_tab_does
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.stack


# -- a stack that has trained to the end ------------------------------------------------------

def test_tensorboard_answers_http_given_its_password(trained_stack):
    assert trained_stack.tensorboard_answers()


@pytest.mark.parametrize("route", ROUTES_THE_TABS_LOAD)
def test_every_route_the_tabs_load_asks_for_the_password(trained_stack, route):
    """401 and none of the data without the password, 200 with it, for each route the browser's
    tabs load (tests/browser checks that the list holds them all)."""
    run = trained_stack.run_dir.name
    refused, refusal = ask_as_the_tab_does(trained_stack.api, route, run, authorized=False)
    answered, _ = ask_as_the_tab_does(trained_stack.api, route, run)
    assert (refused, answered) == (401, 200)
    assert run.encode() not in refusal and b"total_loss" not in refusal


def test_supervisorctl_lists_the_three_programs(trained_stack):
    status = trained_stack.supervisorctl("status")
    # supervisorctl's status exits 3 when some program is not RUNNING, as train is not once it
    # is done.
    assert status.returncode in (0, 3), status.stderr
    assert sorted(trained_stack.program_states()) == sorted(PROGRAMS), status.stdout


def test_train_exits_when_done_while_eval_and_tensorboard_keep_running(trained_stack):
    # Eval watches for runs to come (a second trainer, a sweep's next run) as long as it runs.
    assert trained_stack.program_states() == {
        "train": "EXITED", "eval": "RUNNING", "tensorboard": "RUNNING"}


def test_a_clean_finish_is_not_restarted(trained_stack):
    log = trained_stack.log()
    assert "exited: train (exit status 0; expected)" in log
    assert log.count("spawned: 'train'") == 1
    assert log.count("spawned: 'eval'") == 1
    assert "exited: eval" not in log


def test_eval_says_once_that_every_run_is_evaluated_and_then_idles(trained_stack):
    log = trained_stack.log()
    [idle] = log_lines.EVAL_IDLE.finditer(log)
    assert idle["runs"] == trained_stack.run_dir.name
    last_evaluation = list(log_lines.PRECISION.finditer(log))[-1]
    assert last_evaluation.start() < idle.start()
    assert len(trained_stack.eval_results()) == len(log_lines.PRECISION.findall(log))


def test_the_run_folder_holds_checkpoints_and_event_files(trained_stack):
    run_dir = trained_stack.run_dir
    assert trained_stack.checkpoint_step() == MAX_STEPS
    assert (run_dir / f"model.ckpt-{MAX_STEPS}.index").is_file()
    assert list(run_dir.glob(f"model.ckpt-{MAX_STEPS}.data-*"))
    assert list(run_dir.glob("events.out.tfevents.*")), "no training event file"
    assert list((run_dir / "eval").glob("events.out.tfevents.*")), "no eval event file"


def test_eval_results_cover_the_last_checkpoint(trained_stack):
    results = trained_stack.eval_results()
    assert results[-1]["step"] == MAX_STEPS
    assert all(0.0 <= result["precision_at_1"] <= 1.0 for result in results)
    assert [result["step"] for result in results] == sorted({r["step"] for r in results})


def test_every_output_line_names_its_program(trained_stack):
    log = trained_stack.log()
    unnamed = [line for line in log.splitlines()
               if not (log_lines.PROGRAM_PREFIX.match(line)
                       or log_lines.SUPERVISORD_OWN.match(line))]
    assert not unnamed, "lines without a program name:\n" + "\n".join(unnamed[:20])
    for expected in ("data | ", "train | step ", "tensorboard | open http://"):
        assert expected in log
    assert log_lines.PRECISION.search(log) and "eval | [" in log


def test_the_log_says_where_to_open_tensorboard_in_one_line(trained_stack):
    """The appliance's line, in place of TensorBoard's own `TensorBoard 2.21.0 at http://HOST:PORT/`
    (which, in a container, names the container)."""
    port = trained_stack.port
    lines = [line for line in trained_stack.log().splitlines() if "http://" in line]
    assert lines == [f"tensorboard | open http://localhost:{port} (TensorBoard on "
                     f"127.0.0.1:{port}, this machine only; behind a password, any user name)"]


def non_loopback_address() -> str:
    """This machine's address on its network (the one its default route leaves from; a UDP
    connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any routed address would do
        except OSError as error:
            pytest.skip(f"this machine has no route off loopback: {error}")
        address = probe.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no address but loopback")
    return address


def test_tensorboard_listens_on_loopback_only(trained_stack):
    assert trained_stack.tensorboard_answers()  # on 127.0.0.1
    address = non_loopback_address()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, trained_stack.port), timeout=5).close()


@pytest.mark.parametrize("command", [("python", "-m", "app", "health"), ("entrypoint.sh", "health")],
                         ids=["python -m app health", "entrypoint.sh health"])
def test_health_is_ok_when_training_is_done(trained_stack, command):
    executable = {"python": sys.executable, "entrypoint.sh": str(ENTRYPOINT)}[command[0]]
    result = trained_stack.run(executable, *command[1:])
    assert result.returncode == ExitCode.DONE, result.stdout + result.stderr
    assert result.stdout.startswith("healthy:")


def test_health_says_what_is_wrong_without_supervisord(trained_stack, tmp_path):
    gone = tmp_path / "no-supervisord.sock"
    env = dict(trained_stack.env, APPLIANCE_SUPERVISOR_SOCKET=str(gone))
    result = subprocess.run([sys.executable, "-m", "app", "health"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == ExitCode.UNHEALTHY
    assert f"unhealthy: cannot ask supervisord at {gone}" in result.stdout


# -- a bad config stops everything before it starts -------------------------------------------

# The first line each of these cases must print, word for word: what is wrong, and where.
EXACT_MESSAGES = {
    "misspelt key": "config error: {config_file}: line 2: unknown key 'train.max_stpes'",
    "unclosed bracket": "config error: {config_file}: line 2, column 5: invalid YAML",
    "maybe as a boolean override": "config error: environment variable CIFAR10_EXPORT_BEST: "
                                   "export.best: expected true or false",
}


@pytest.mark.parametrize("case", bad_configs.named(*EXACT_MESSAGES), ids=list(EXACT_MESSAGES))
def test_bad_config_exits_2_and_starts_nothing(tmp_path, case):
    stack = NativeStack(tmp_path, extra_env=case.env)
    if case.file is not None:
        stack.config_file.write_text(case.file)
    finished = run_in_own_session([str(ENTRYPOINT)], tmp_path, stack.env, timeout=60,
                                  stderr_apart=True)
    stderr = finished.stderr
    assert finished.exit_code == ExitCode.BAD_INPUT, finished.output + stderr
    message = EXACT_MESSAGES[case.name].format(config_file=stack.config_file)
    assert stderr.startswith(message), stderr
    assert len(stderr.splitlines()) == 1, "one line that says what and where"
    assert not finished.left_running
    assert not stack.socket_path.exists(), "supervisord was started"
    assert not stack.train_dir.exists() and not stack.data_dir.exists(), "folders were made"


# -- a crash, a stop mid-training, and starting again -----------------------------------------

def kill_the_trainer(stack: NativeStack) -> None:
    """SIGKILL to the trainer itself, as the kernel's OOM killer would do it. supervisord knows
    the pid of prefix_output.py, whose one child the trainer is."""
    children = child_pids(int(stack.supervisorctl("pid", "appliance:train").stdout))
    assert len(children) == 1, children
    os.kill(children[0], signal.SIGKILL)


@pytest.fixture(scope="module")
def interrupted_stack(tmp_path_factory):
    """A long training run that has its trainer killed once (supervisord restarts it), and is
    then stopped by SIGTERM to supervisord between two periodic checkpoints. What was seen on
    the way is in stack.observed."""
    stack = NativeStack(tmp_path_factory.mktemp("interrupted_stack"),
                        extra_env={"CIFAR10_TRAIN_MAX_STEPS": "1000000"})
    observed = stack.observed = {}
    stack.start()
    try:
        wait_until(stack.tensorboard_answers, 120, "TensorBoard to answer HTTP")
        wait_until(lambda: (stack.checkpoint_step() or 0) >= 50, 120, "a first checkpoint")

        kill_the_trainer(stack)
        resumed = wait_until(lambda: log_lines.RESUMED.search(stack.log()), 120,
                             "train to be restarted")
        observed["resumed_after_crash_from"] = int(resumed["step"])

        def steps_since_crash():
            return log_lines.steps(stack.log()[resumed.end():])

        past_checkpoint = stack.checkpoint_step() + 20
        wait_until(lambda: max(steps_since_crash(), default=0) >= past_checkpoint, 60,
                   f"step {past_checkpoint}")
        observed["states"] = stack.program_states()
        observed["health"] = stack.run(sys.executable, "-m", "app", "health")
        stack.supervisorctl("stop", "appliance:eval")
        observed["health_without_eval"] = stack.run(sys.executable, "-m", "app", "health")
        stack.supervisorctl("start", "appliance:eval")

        observed["last_logged_step"] = max(steps_since_crash())
        observed.update(stack.stop())
        observed["checkpoint_after_stop"] = stack.checkpoint_step()
        yield stack
    finally:
        stack.stop()


def test_a_crashed_trainer_is_restarted_and_resumes(interrupted_stack):
    log = interrupted_stack.log()
    assert "exited: train (terminated by SIGKILL; not expected)" in log
    assert log.count("spawned: 'train'") == 2
    assert interrupted_stack.observed["resumed_after_crash_from"] >= 50


def test_health_is_ok_while_training(interrupted_stack):
    observed = interrupted_stack.observed
    assert observed["states"] == {"train": "RUNNING", "eval": "RUNNING", "tensorboard": "RUNNING"}
    assert observed["health"].returncode == ExitCode.DONE, observed["health"].stdout


def test_health_names_a_program_that_is_not_running(interrupted_stack):
    health = interrupted_stack.observed["health_without_eval"]
    assert health.returncode == ExitCode.UNHEALTHY
    assert health.stdout.strip() == "unhealthy: eval: STOPPED"


def test_sigterm_stops_every_program_within_30_s(interrupted_stack):
    observed = interrupted_stack.observed
    assert observed["stopped_after"] < STOP_GRACE_SECS
    assert observed["left_running"] == []
    assert observed["exit_code"] == ExitCode.DONE


def test_sigterm_lets_train_save_a_checkpoint_at_the_step_reached(interrupted_stack):
    observed = interrupted_stack.observed
    step = observed["checkpoint_after_stop"]
    assert step >= observed["last_logged_step"]
    assert (interrupted_stack.run_dir / f"model.ckpt-{step}.index").is_file()
    log = interrupted_stack.log()
    assert f"train | saved model.ckpt-{step}" in log
    # Stopped by its own hand (exit 0 after the save), not killed at the end of the grace period.
    assert "stopped: train (exit status 0)" in log


def test_restart_resumes_from_that_checkpoint(interrupted_stack):
    step = interrupted_stack.observed["checkpoint_after_stop"]
    interrupted_stack.start()
    wait_until(lambda: log_lines.find(log_lines.RESUMED, interrupted_stack.log(True), step=step),
               120, f"train to resume from model.ckpt-{step}")

    def steps_since_restart():
        return log_lines.steps(interrupted_stack.log(since_start=True))

    wait_until(steps_since_restart, 60, "training to go on")
    assert min(steps_since_restart()) > step


# -- a run that diverges ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def diverged_stack(tmp_path_factory):
    """A stack whose learning rate makes the loss NaN at once: train exits DIVERGED (3)."""
    stack = NativeStack(tmp_path_factory.mktemp("diverged_stack"),
                        extra_env={"CIFAR10_TRAIN_INITIAL_LEARNING_RATE": "1.0e+12"})
    stack.start()
    try:
        wait_until(lambda: "exited: train" in stack.log(), 120, "train to exit")
        wait_until(stack.tensorboard_answers, 120, "TensorBoard to answer HTTP")
        yield stack
    finally:
        stack.stop()


def test_a_diverged_run_is_not_restarted(diverged_stack):
    log = diverged_stack.log()
    assert f"exited: train (exit status {ExitCode.DIVERGED:d}; expected)" in log
    assert log.count("spawned: 'train'") == 1
    assert diverged_stack.program_states()["tensorboard"] == "RUNNING"


def test_health_names_a_diverged_run(diverged_stack):
    health = diverged_stack.run(sys.executable, "-m", "app", "health")
    assert health.returncode == ExitCode.UNHEALTHY
    diverged = (f"unhealthy: train: EXITED with status {ExitCode.DIVERGED:d} "
                "(training diverged: the loss became NaN)")
    assert diverged in health.stdout.splitlines()
