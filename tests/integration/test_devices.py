"""What train and eval compute on: said in one line at the start, and GPUs that were given but
that TensorFlow cannot use refused, not silently replaced by the CPU. (No GPU here: this CPU
build of TensorFlow sees none, which is exactly the case of a container given GPUs it cannot use.)
"""
import pytest

from app.exit_codes import ExitCode

pytestmark = pytest.mark.slow


def small_run(tmp_path, *changes: str) -> list[str]:
    settings = [f"paths.train_dir={tmp_path}/train", f"paths.data_dir={tmp_path}/data",
                "data.source=synthetic", "data.synthetic_train_examples=100",
                "data.synthetic_test_examples=20", "eval.num_examples=20", "train.max_steps=1",
                "train.batch_size=4", *changes]
    return [argument for setting in settings for argument in ("--set", setting)]


@pytest.mark.parametrize("program, key", [("train", "runtime.device"), ("eval", "eval.device")])
def test_gpus_given_but_not_seen_exit_2_naming_the_causes_and_the_cpu_key(
        run_app, tmp_path, program, key):
    arguments = [program, "--once"] if program == "eval" else [program]
    result = run_app(*arguments, *small_run(tmp_path), NVIDIA_VISIBLE_DEVICES="all")
    assert result.returncode == ExitCode.BAD_INPUT, result.stdout + result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "the container was given GPUs (NVIDIA_VISIBLE_DEVICES=all), but TensorFlow sees none" \
        in error
    assert "CPU flavor" in error  # this TensorFlow is tensorflow-cpu: the likeliest cause here
    assert f"set {key}: cpu (environment: CIFAR10_{key.replace('.', '_').upper()}=cpu)" in error
    assert not list((tmp_path / "train" / "default").glob("model.ckpt-*"))


def test_the_cpu_on_purpose_trains_and_says_so(run_app, tmp_path):
    result = run_app("train", *small_run(tmp_path, "runtime.device=cpu"),
                     NVIDIA_VISIBLE_DEVICES="all")
    assert result.returncode == ExitCode.DONE, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("training run 'default' on the CPU (")
    assert "one replica; computing in float32" in first


@pytest.mark.parametrize("value", ["void", "none", ""])
def test_no_gpus_given_is_the_cpu_without_complaint(run_app, tmp_path, value):
    result = run_app("train", *small_run(tmp_path), NVIDIA_VISIBLE_DEVICES=value)
    assert result.returncode == ExitCode.DONE, result.stdout + result.stderr
    assert result.stdout.startswith("training run 'default' on the CPU")
