"""What train and eval compute on: said in one line at the start, and GPUs that were given but
that TensorFlow cannot use refused, not silently replaced by the CPU. (No GPU here: this CPU
build of TensorFlow sees none, which is exactly the case of a container given GPUs it cannot use.)
"""
import pytest

from app.exit_codes import ExitCode
from tests.harness.environment import run_app, settings

pytestmark = pytest.mark.slow


SMALL_RUN = {"data.synthetic_train_examples": 100, "data.synthetic_test_examples": 20,
             "eval.num_examples": 20, "train.max_steps": 1, "train.batch_size": 4}


@pytest.mark.parametrize("program, key", [("train", "runtime.device"), ("eval", "eval.device")])
def test_gpus_given_but_not_seen_exit_2_naming_the_causes_and_the_cpu_key(
        tmp_path, program, key):
    arguments = [program, "--once"] if program == "eval" else [program]
    result = run_app(*arguments, *settings(tmp_path, SMALL_RUN), NVIDIA_VISIBLE_DEVICES="all")
    assert result.returncode == ExitCode.BAD_INPUT, result.stdout + result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "the container was given GPUs (NVIDIA_VISIBLE_DEVICES=all), but TensorFlow sees none" \
        in error
    assert "CPU flavor" in error  # this TensorFlow is tensorflow-cpu: the likeliest cause here
    assert f"set {key}: cpu (environment: CIFAR10_{key.replace('.', '_').upper()}=cpu)" in error
    assert not list((tmp_path / "train" / "default").glob("model.ckpt-*"))


def test_the_cpu_on_purpose_trains_and_says_so(tmp_path):
    result = run_app("train", *settings(tmp_path, SMALL_RUN, **{"runtime.device": "cpu"}),
                     NVIDIA_VISIBLE_DEVICES="all")
    assert result.returncode == ExitCode.DONE, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("training run 'default' on the CPU (")
    assert "one replica; computing in float32" in first


@pytest.mark.parametrize("value", ["void", "none", ""])
def test_no_gpus_given_is_the_cpu_without_complaint(tmp_path, value):
    result = run_app("train", *settings(tmp_path, SMALL_RUN), NVIDIA_VISIBLE_DEVICES=value)
    assert result.returncode == ExitCode.DONE, result.stdout + result.stderr
    assert result.stdout.startswith("training run 'default' on the CPU")
