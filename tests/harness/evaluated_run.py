"""One short real run on the synthetic set, trained, evaluated by the watcher and reported, that
every test which only reads its files shares (the session fixture `evaluated_run`): training it
once costs about a minute. 300 steps with a checkpoint every 100; eval over all three, each
writing the projector's files (predict's tests compare with its predictions at the exported
step) and an export at each new best; then `report`. A test that changes files works on a copy."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from app.exit_codes import ExitCode
from app.volume.results import read_results
from tests.harness.environment import run_app, settings

MAX_STEPS = 300
EVALUATED_STEPS = [100, 200, 300]
TEST_IMAGES = 1000
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")

RUN = {  # the run's keys (settings() adds its folders and the synthetic set)
    "data.synthetic_train_examples": 5000, "data.synthetic_test_examples": TEST_IMAGES,
    "train.max_steps": MAX_STEPS, "train.batch_size": 64, "train.seed": 1,
    "tutorial.initial_learning_rate": 0.05,
    "runtime.checkpoint_every_steps": 100, "runtime.checkpoint_min_gap_secs": "null",
    "runtime.summary_every_steps": 1000,
    "eval.num_examples": TEST_IMAGES, "eval.every_secs": 1,
    "projector.examples": TEST_IMAGES, "projector.every_evals": 1,
}


@dataclasses.dataclass(frozen=True)
class EvaluatedRun:
    root: Path    # holds train/ (the volume) and data/ (the synthetic set)
    report: str   # what `report --run default` printed


def train_evaluate_and_report(root: Path) -> EvaluatedRun:
    for command in (["train"], ["eval", "--until-done"], ["report", "--run", "default"]):
        finished = run_app(*command, *settings(root, RUN))
        assert finished.returncode == ExitCode.DONE, finished.stdout + finished.stderr
    return EvaluatedRun(root, finished.stdout)


def read_test_set(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic test set, read straight from its binary file: images, labels."""
    records = np.fromfile(root / "data" / "synthetic" / "cifar-10-batches-bin" / "test_batch.bin",
                          dtype=np.uint8).reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0]


def run_folder(root: Path) -> Path:
    return root / "train" / "default"


def results(root: Path) -> list[dict]:
    """What eval recorded for the run (its results.jsonl), oldest first."""
    return read_results(run_folder(root) / "eval")
