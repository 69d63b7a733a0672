"""Training in float16 with dynamic loss scaling, for real on the CPU (Keras computes float16
there too, slowly: the fast recipe's ResNet-9 at width 4, a few steps). A step whose gradients
overflow is skipped and the scale halved, and training goes on; the scale is saved and resumed
with the run; a loss that is no longer a number still ends the run with exit code 3. Under
MirroredStrategy an overflow on one replica skips the step on all."""
import json
import logging
import re
import signal
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from app import config as configuration
from app.exit_codes import ExitCode
from app.train.trainer import Trainer, TrainingDiverged
from tests.harness.environment import REPO_ROOT, app_environment, run_app, settings
from tests.integration.test_train_eval import checkpoint_state, event_tags

pytestmark = pytest.mark.slow

MAX_STEPS = 8
SMALL_RUN = {  # settings() adds its folders and the synthetic set
    "data.synthetic_train_examples": 256, "data.synthetic_test_examples": 32,
    "eval.num_examples": 32, "train.recipe": "fast", "fast.width": 4, "train.batch_size": 8,
    "train.mixed_precision": "float16", "train.max_steps": MAX_STEPS, "train.seed": 1,
    "runtime.log_every_steps": 4, "runtime.summary_every_steps": 4,
    "runtime.checkpoint_every_steps": 4,
}
# Far above what float16 holds (65,504) times any gradient: the first steps must overflow.
OVERFLOWING_SCALE = 2.0 ** 40
SKIPPED = re.compile(r"^skipped (\d+) of the steps after step \d+: their float16 gradients "
                     r"overflowed; loss scale (\S+)$")
SCALE_IN_CHECKPOINT = "loss_scale/scale/.ATTRIBUTES/VARIABLE_VALUE"
GOOD_STEPS_IN_CHECKPOINT = "loss_scale/good_steps/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture
def in_this_process():
    """Trainers built here set the process's dtype policy and stop signals: put both back."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    keras.mixed_precision.set_global_policy("float32")
    for number, handler in handlers.items():
        signal.signal(number, handler)


def trainer_for(root, **changes) -> Trainer:
    overrides = settings(root, SMALL_RUN, **changes)[1::2]  # the values of its --set pairs
    return Trainer(configuration.load(overrides=overrides, environ={}))


def train(trainer: Trainer) -> int:
    try:
        return trainer.run()
    finally:
        trainer.writer.close()


def test_overflowing_steps_are_skipped_the_scale_halved_and_training_goes_on(
        tmp_path, in_this_process, caplog):
    caplog.set_level(logging.INFO, logger="app.train.trainer")
    trainer = trainer_for(tmp_path)
    trainer.loss_scaling.scale.assign(OVERFLOWING_SCALE)
    assert train(trainer) == ExitCode.DONE

    skips = [SKIPPED.match(record.getMessage()) for record in caplog.records]
    skipped = sum(int(match.group(1)) for match in skips if match)
    assert skipped >= 1, caplog.text
    # Each skipped step halved the scale once (growing it takes 2,000 good steps in a row).
    scale = float(trainer.loss_scaling.scale.numpy())
    assert scale == OVERFLOWING_SCALE / 2 ** skipped
    # The global step counts the steps applied: the run went on to max_steps all the same.
    assert int(trainer.global_step.numpy()) == MAX_STEPS
    assert checkpoint_state(tmp_path / "train" / "default") == f"model.ckpt-{MAX_STEPS}"
    assert f"reached train.max_steps = {MAX_STEPS}" in caplog.text
    assert "the loss became NaN" not in caplog.text
    assert event_tags(tmp_path / "train" / "default")["loss_scale"] == "scalars"

    saved = tf.train.load_checkpoint(str(tmp_path / "train" / "default" /
                                         f"model.ckpt-{MAX_STEPS}"))
    assert saved.get_tensor(SCALE_IN_CHECKPOINT) == scale
    good_steps = int(trainer.loss_scaling.good_steps.numpy())
    assert saved.get_tensor(GOOD_STEPS_IN_CHECKPOINT) == good_steps >= 1

    # A new trainer of the run resumes the scale and its count of good steps exactly.
    caplog.clear()
    resumed = trainer_for(tmp_path)
    resumed.loss_scaling.scale.assign(3.0)  # anything but the saved scale
    resumed.loss_scaling.good_steps.assign(0)
    assert train(resumed) == ExitCode.DONE  # at max_steps already: it only restores
    assert float(resumed.loss_scaling.scale.numpy()) == scale
    assert int(resumed.loss_scaling.good_steps.numpy()) == good_steps
    assert f"float16: resumed at loss scale {scale:g}" in caplog.text


def test_a_loss_scale_below_1_is_a_divergence(tmp_path, in_this_process):
    # Reached only by halvings: the gradients overflowed float16 even at a scale of 1.
    trainer = trainer_for(tmp_path, **{"train.max_steps": 2})
    trainer.loss_scaling.scale.assign(0.5)
    with pytest.raises(TrainingDiverged, match=r"the gradients overflow float16 even unscaled "
                                               r"at step 2 \(loss scale 0\.5\)"):
        train(trainer)
    assert TrainingDiverged.exit_code == ExitCode.DIVERGED
    assert not list((tmp_path / "train" / "default").glob("model.ckpt-*"))


def test_a_diverging_learning_rate_in_float16_exits_3(tmp_path):
    result = run_app("train", *settings(tmp_path, SMALL_RUN, **{
        "fast.peak_learning_rate": 1e12, "train.max_steps": 40}), timeout=600)
    assert result.returncode == ExitCode.DIVERGED, result.stdout + result.stderr
    assert "computing in float16 with dynamic loss scaling" in result.stdout
    assert "error: the loss became NaN or infinite at step" in result.stderr
    assert "Try a lower learning rate (the `fast:` section)" in result.stderr


# Two replicas on two logical CPU devices (which must be made before TensorFlow starts: a process
# of its own). For each pair of factors, one step of a fresh one-weight model through
# LossScaling, each replica's loss its output times its factor: the gradient reaching the float16
# output is INITIAL_SCALE x factor, which overflows float16 (65,504) for a factor of 4. Prints,
# for each, the weight after the step, whether the scale was halved, and the global step.
ONE_STEP_ON_TWO_REPLICAS = """
import json, sys
import keras
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
keras.mixed_precision.set_global_policy("mixed_float16")
from app.train.loss_scaling import INITIAL_SCALE, LossScaling

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def one_step(factors):
    with strategy.scope():
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
            1, use_bias=False, kernel_initializer="ones")])
        scaling = LossScaling(keras.optimizers.SGD(0.1), model.trainable_variables)
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(float(factors[context.replica_id_in_sync_group])))

    def replica_step(factor):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(model(tf.ones([1, 1])), tf.float32)) * factor
            scaled = scaling.scale_loss(loss)
        scaling.apply(tape.gradient(scaled, variables), variables)

    tf.function(lambda: strategy.run(replica_step, args=(per_replica,)))()
    return {"kernel": float(model.trainable_variables[0].numpy()[0, 0]),
            "scale_halved": float(scaling.scale.numpy()) == INITIAL_SCALE / 2,
            "global_step": int(scaling.optimizer.iterations.numpy())}


print(json.dumps([one_step(json.loads(factors)) for factors in sys.argv[1:]]))
"""
FACTORS = [(1, 1), (1, 4), (4, 1)]


@pytest.fixture(scope="module")
def one_step_on_two_replicas() -> dict:
    result = subprocess.run(
        [sys.executable, "-c", ONE_STEP_ON_TWO_REPLICAS, *map(json.dumps, FACTORS)],
        cwd=REPO_ROOT, env=app_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return dict(zip(FACTORS, json.loads(result.stdout.splitlines()[-1])))


@pytest.mark.parametrize("factors", [(1, 4), (4, 1)])
def test_an_overflow_on_either_replica_skips_the_step_on_both(one_step_on_two_replicas, factors):
    # Keras alone decides from the first replica's gradients: (1, 4) would apply an infinite one.
    assert one_step_on_two_replicas[factors] == {
        "kernel": 1.0, "scale_halved": True, "global_step": 0}


def test_finite_gradients_on_both_replicas_are_applied(one_step_on_two_replicas):
    # SGD at 0.1 on the summed gradient 1 + 1: the weight 1 goes to 0.8.
    assert one_step_on_two_replicas[(1, 1)] == pytest.approx(
        {"kernel": 0.8, "scale_halved": False, "global_step": 1})
