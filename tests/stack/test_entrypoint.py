"""entrypoint.sh on its own: lint-clean, and each kind of command does what its header says;
and `make run`, which starts it, passing on the variables that choose TensorBoard's address."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from app.exit_codes import ExitCode
from tests.harness.environment import REPO_ROOT, app_environment
from tests.harness.native_stack import ENTRYPOINT, NativeStack, run_in_own_session

pytestmark = pytest.mark.stack


def test_entrypoint_is_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: apt-get install the packages in "
                    ".ci/debian-packages-stack.txt (CI installs them)")
    result = subprocess.run(["shellcheck", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def run_entrypoint(stack: NativeStack, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRYPOINT), *arguments], cwd=stack.folder, env=stack.env,
                          capture_output=True, text=True, timeout=120)


def test_a_role_runs_the_app_with_the_same_config_layers(tmp_path):
    stack = NativeStack(tmp_path, extra_env={"CIFAR10_TRAIN_MAX_STEPS": "1234"})
    result = run_entrypoint(stack, "check-config", "--set", "eval.num_examples=321")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["data"]["source"] == "synthetic"  # from the file
    assert resolved["train"]["max_steps"] == 1234  # from the environment
    assert resolved["eval"]["num_examples"] == 321  # from --set


def test_the_data_role_prepares_the_folders_and_the_data_set(tmp_path):
    stack = NativeStack(tmp_path)
    result = run_entrypoint(stack, "data")
    assert result.returncode == 0, result.stderr
    assert stack.train_dir.is_dir()
    assert list(stack.data_dir.rglob("data_batch_1.bin"))


def test_any_other_command_runs_as_is_even_with_a_broken_config(tmp_path):
    stack = NativeStack(tmp_path)
    stack.config_file.write_text("train: [\n")  # a shell for debugging must still open
    result = run_entrypoint(stack, "sh", "-c", 'echo "$APPLIANCE_HOME"; exit 7')
    assert result.returncode == 7
    assert result.stdout.strip() == str(REPO_ROOT)


def test_a_bad_key_given_to_the_appliance_as_a_whole_stops_it_first(tmp_path):
    """`entrypoint.sh --set ...` (the image's command with arguments) hands them to every program;
    a bad one is one line and exit 2, before any folder, supervisord or program."""
    stack = NativeStack(tmp_path)
    finished = run_in_own_session([str(ENTRYPOINT), "--set", "eval.num_examples=100", "--set",
                                   "train.batch_sise=64"], tmp_path, stack.env, timeout=60,
                                  stderr_apart=True)
    assert finished.exit_code == ExitCode.BAD_INPUT, finished.output + finished.stderr
    assert finished.stderr.splitlines() == [
        "config error: --set train.batch_sise=64: unknown key 'train.batch_sise' (did you mean "
        "'train.batch_size'?)"]
    assert not finished.left_running
    assert not stack.socket_path.exists(), "supervisord was started"
    assert not stack.train_dir.exists() and not stack.data_dir.exists(), "folders were made"


@pytest.mark.parametrize("variable, key", [("TENSORBOARD_ADDRESS", "address"),
                                           ("TENSORBOARD_PORT", "port")])
def test_make_run_passes_on_tensorboard_s_address_and_port(tmp_path, variable, key):
    """`TENSORBOARD_ADDRESS=0.0.0.0 make run` reaches tensorboard.address (TENSORBOARD_PORT,
    tensorboard.port): shown here by a value the config refuses, before anything starts."""
    finished = run_in_own_session(
        # -o: the venv is there; `make run` would otherwise check its requirements first.
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed", "run",
         f"RUN_DIR={tmp_path}"], REPO_ROOT, app_environment(**{variable: "nowhere"}),
        timeout=120, stderr_apart=True)
    assert finished.exit_code != 0
    assert finished.stderr.startswith(
        f"config error: environment variable CIFAR10_TENSORBOARD_{key.upper()}: "
        f"tensorboard.{key}: expected "), finished.stderr
    assert not (tmp_path / "cifar10_train").exists()
