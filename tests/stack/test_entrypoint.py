"""entrypoint.sh on its own: lint-clean, and each kind of command does what its header says."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.harness.environment import REPO_ROOT
from tests.harness.native_stack import ENTRYPOINT, NativeStack

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
