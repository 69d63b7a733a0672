"""Runs that repeat: with train.seed and train.deterministic, two runs of one config end with
bit-identical weights and curves, and so does a run killed with kill -9 and resumed; with
train.seed null, runs differ. Compared as a user would: every tensor of the final checkpoints,
and the total_loss curve TensorBoard reads from the event files."""
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from app.exit_codes import ExitCode
from tests.harness.environment import REPO_ROOT, app_environment, run_app, settings

pytestmark = pytest.mark.slow

MAX_STEPS = 200
REPEATABLE = {  # settings() adds the folders and the synthetic set
    "data.synthetic_train_examples": 512, "data.synthetic_test_examples": 64,
    "eval.num_examples": 64, "train.batch_size": 32, "train.max_steps": MAX_STEPS,
    "train.seed": 3, "train.deterministic": "true",
    "runtime.checkpoint_every_steps": 50, "runtime.checkpoint_min_gap_secs": "null",
}
# Bookkeeping of tf.train.Checkpoint (how many saves this process made), not training state.
NOT_TRAINING_STATE = {"save_counter/.ATTRIBUTES/VARIABLE_VALUE"}


def train(root, run: str, **changes) -> str:
    done = run_app("train", *settings(root, REPEATABLE, **{"paths.run": run, **changes}))
    assert done.returncode == ExitCode.DONE, done.stdout + done.stderr
    return done.stdout + done.stderr


def final_tensors(root, run: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(root / "train" / run / f"model.ckpt-{MAX_STEPS}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name not in NOT_TRAINING_STATE}


def differing(first: dict, second: dict) -> list[str]:
    assert first.keys() == second.keys()
    return sorted(name for name in first if not np.array_equal(first[name], second[name]))


def total_loss_curve(root, run: str) -> dict[int, float]:
    events = event_accumulator.EventAccumulator(
        str(root / "train" / run), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    return {event.step: float(tf.make_ndarray(event.tensor_proto))
            for event in events.Tensors("total_loss (raw)")}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    """A run trained from start to end in one go: what every other run is compared with."""
    root = tmp_path_factory.mktemp("repeatable")
    train(root, "unbroken")
    return root


def test_two_runs_of_one_seed_are_bit_identical(unbroken):
    train(unbroken, "again")
    assert differing(final_tensors(unbroken, "unbroken"), final_tensors(unbroken, "again")) == []
    first, second = total_loss_curve(unbroken, "unbroken"), total_loss_curve(unbroken, "again")
    shared = sorted(first.keys() & second.keys())  # summary steps are spaced by their cost
    assert shared[0] == 0 and shared[-1] == MAX_STEPS - 1
    assert [first[step] for step in shared] == [second[step] for step in shared]


def test_a_run_killed_and_resumed_ends_as_the_unbroken_one(unbroken):
    command = [sys.executable, "-m", "app", "train",
               *settings(unbroken, REPEATABLE, **{"paths.run": "killed"})]
    trainer = subprocess.Popen(command, cwd=REPO_ROOT, env=app_environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved = unbroken / "train" / "killed" / "model.ckpt-100.index"
    try:
        while not saved.exists() and trainer.poll() is None:
            time.sleep(0.02)
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
    assert saved.exists(), "the trainer ended before its checkpoint at step 100"
    assert not (unbroken / "train" / "killed" / f"model.ckpt-{MAX_STEPS}.index").exists()
    train(unbroken, "killed")  # resumes from the newest checkpoint it finds
    assert differing(final_tensors(unbroken, "unbroken"), final_tensors(unbroken, "killed")) == []


def test_without_a_seed_runs_differ(unbroken):
    output = train(unbroken, "unseeded", **{"train.seed": "null", "train.deterministic": "false"})
    assert re.search(r"train\.seed is null: this start draws seed \d+ \(set train\.seed to "
                     r"repeat a run\)", output)
    seeded, unseeded = final_tensors(unbroken, "unbroken"), final_tensors(unbroken, "unseeded")
    # Every weight, its average, the loss averages (the step counters are alike, of course).
    floats = {name for name, value in seeded.items() if np.asarray(value).dtype.kind == "f"}
    assert floats and set(differing(seeded, unseeded)) == floats
