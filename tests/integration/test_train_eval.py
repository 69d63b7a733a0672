"""Train and eval for real on the synthetic set, through the command line a user runs.

One short training run is shared by the tests of this module (a few hundred CPU steps); each test
then checks one thing a user would: the log, the files, the numbers, the TensorBoard tags. The
tests that only read that run are part of `make test-fast`; those that train on from a copy of it
are marked slow.
"""
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import event_accumulator

from app.exit_codes import ExitCode
from app.volume.results import read_results
from tests.harness.environment import REPO_ROOT, app_environment, run_app, settings

MAX_STEPS = 300
LOG_LINE = re.compile(r"^step (\d+)/(\d+), loss = (\d+\.\d\d) \((\d+\.\d) examples/sec; "
                      r"(\d+\.\d{3}) sec/batch; eta (\d+h\d\dm|\d+m\d\ds)"
                      r"(?:; summaries (\d+\.\d)% of time)?\)$", re.MULTILINE)


RUN = {  # the run the tests share (settings() adds its folders and the synthetic set)
    "data.synthetic_train_examples": 5000, "data.synthetic_test_examples": 1000,
    "train.max_steps": MAX_STEPS, "train.batch_size": 64, "runtime.log_every_secs": 1,
    # Saves and summaries at exactly their steps, which the tests count: no gap between saves,
    # no widening of the summaries' spacing by their cost.
    "runtime.checkpoint_every_steps": 100, "runtime.checkpoint_min_gap_secs": "null",
    "runtime.summary_every_steps": 50, "runtime.summary_max_share": "null",
    "train.seed": 1, "eval.num_examples": 1000, "eval.every_secs": 1,
    # Half the tutorial's 0.1: at batch 64 (half its 128) the tutorial's rate sometimes
    # overshoots in the first hundred steps, and this run must learn every time.
    "tutorial.initial_learning_rate": 0.05,
}


def checkpoint_state(train_dir: Path) -> str:
    return re.search(r'^model_checkpoint_path: "(.+)"$', (train_dir / "checkpoint").read_text(),
                     re.MULTILINE).group(1)


def event_tags(run_dir: Path) -> dict:
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return {tag: accumulator.SummaryMetadata(tag).plugin_data.plugin_name
            for tag in accumulator.Tags()["tensors"]}


def scalar_steps(run_dir: Path, tag: str) -> list[int]:
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 300-step run followed by `eval --once`; yields its folder and both programs' output."""
    root = tmp_path_factory.mktemp("run")
    train = run_app("train", *settings(root, RUN))
    assert train.returncode == ExitCode.DONE, train.stdout + train.stderr
    evaluation = run_app("eval", "--once", *settings(root, RUN))
    assert evaluation.returncode == ExitCode.DONE, evaluation.stdout + evaluation.stderr
    return root, train.stdout, evaluation.stdout


def test_log_lines_show_progress_and_the_loss_falls(trained):
    _, train_log, _ = trained
    lines = LOG_LINE.findall(train_log)
    steps = [int(step) for step, *_ in lines]
    # A line after the first call (one step), one a second, and one at the end.
    assert steps[0] == 1 and steps[-1] == MAX_STEPS, steps
    assert steps == sorted(set(steps)), steps
    assert all(total == str(MAX_STEPS) for _, total, *_ in lines)
    losses = [float(loss) for _, _, loss, *_ in lines]
    assert losses[-1] < 0.8 * losses[0], losses
    # The summaries' share, once one summary step (after step 0's, which traces) was measured.
    assert lines[-1][-1], lines[-1]
    assert "no checkpoint in" in train_log and f"reached train.max_steps = {MAX_STEPS}" in train_log


def test_checkpoints_are_named_by_global_step_with_a_state_file(trained):
    root, train_log, _ = trained
    train_dir = root / "train" / "default"
    assert checkpoint_state(train_dir) == f"model.ckpt-{MAX_STEPS}"
    for step in (100, 200, 300):
        assert (train_dir / f"model.ckpt-{step}.index").is_file()
        assert list(train_dir.glob(f"model.ckpt-{step}.data-*"))
        assert f"saved model.ckpt-{step}" in train_log


def test_eval_reports_precision_well_above_chance(trained):
    root, _, eval_log = trained
    match = re.search(r"^\[default\] precision @ 1 = (\d\.\d{3}) \(step 300;", eval_log,
                      re.MULTILINE)
    assert match, eval_log
    # Seven runs of this config ended at 0.51 to 0.99 (its loss still jumps now and then at
    # step 300 of the tutorial's schedule); a model that learned nothing is at 0.1.
    assert float(match.group(1)) >= 0.3
    [result] = read_results(root / "train" / "default" / "eval")
    assert result["step"] == MAX_STEPS and result["num_examples"] == 1000
    assert result["precision_at_1"] == pytest.approx(float(match.group(1)), abs=5e-4)
    assert result["weights"] == "moving_averages"


def test_training_events_hold_every_tutorial_summary(trained):
    root, _, _ = trained
    tags = event_tags(root / "train" / "default")
    expected = {"images": "images", "learning_rate": "scalars", "examples_per_sec": "scalars",
                "sec_per_batch": "scalars", "config": "text", "train_step": "graph_run_metadata_graph",
                "_hparams_/session_start_info": "hparams"}
    for layer in ("conv1", "conv2", "local3", "local4", "softmax_linear"):
        expected[f"{layer}/activations"] = "histograms"
        expected[f"{layer}/sparsity"] = "scalars"
        for variable in ("kernel", "bias"):
            expected[f"{layer}/{variable}"] = "histograms"
            expected[f"{layer}/{variable}/gradients"] = "histograms"
    for loss in ("cross_entropy", "local3/weight_loss", "local4/weight_loss", "total_loss"):
        expected[loss] = expected[f"{loss} (raw)"] = "scalars"
    assert {tag: tags.get(tag) for tag in expected} == expected
    assert scalar_steps(root / "train" / "default", "total_loss") == [0, 50, 100, 150, 200, 250, 299]


def test_eval_events_sit_at_the_checkpoints_global_step(trained):
    root, _, _ = trained
    tags = event_tags(root / "train" / "default" / "eval")
    assert tags["precision @ 1"] == "scalars" and tags["cross_entropy"] == "scalars"
    assert scalar_steps(root / "train" / "default" / "eval", "precision @ 1") == [MAX_STEPS]


@pytest.mark.slow
def test_restart_resumes_and_eval_catches_up_on_the_newer_checkpoints(trained, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained[0], root)
    more = run_app("train", *settings(root, RUN, **{"train.max_steps": 350}), timeout=600)
    assert more.returncode == ExitCode.DONE, more.stderr
    assert "resumed from model.ckpt-300" in more.stdout
    assert LOG_LINE.findall(more.stdout)[0][0] == "301"  # the first call of the resumed run
    assert checkpoint_state(root / "train" / "default") == "model.ckpt-350"

    # Eval has seen 300: the watcher evaluates what is newer and stops at max_steps; the older
    # checkpoints it passes over, so that the eval curves only go forward.
    watcher = run_app("eval", "--until-done", *settings(root, RUN, **{"train.max_steps": 350}),
                      timeout=600)
    assert watcher.returncode == ExitCode.DONE, watcher.stderr
    for older in (100, 200):
        assert f"passed over model.ckpt-{older}: older than the newest evaluated" in watcher.stdout
    steps = [result["step"] for result in read_results(root / "train" / "default" / "eval")]
    assert steps == [300, 350]


@pytest.mark.slow
def test_eval_skips_a_checkpoint_rotated_away_while_it_reads_it(trained, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained[0], root)
    (root / "train" / "default" / "eval").rename(root / "eval-of-300")  # as if none evaluated
    (root / "train" / "default" / "model.ckpt-100.data-00000-of-00001").unlink()  # as if rotated mid-read
    watcher = run_app("eval", "--until-done", *settings(root, RUN), timeout=600)
    assert watcher.returncode == ExitCode.DONE, watcher.stderr
    assert "skipped model.ckpt-100: gone or incomplete while being read" in watcher.stdout
    steps = [result["step"] for result in read_results(root / "train" / "default" / "eval")]
    assert steps == [200, 300]


@pytest.mark.slow
def test_sigterm_saves_the_step_reached_and_exits_0(trained, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained[0], root)
    trainer = subprocess.Popen(
        [sys.executable, "-m", "app", "train",
         *settings(root, RUN, **{"train.max_steps": 100_000})],
        cwd=REPO_ROOT, env=app_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        for line in trainer.stdout:
            if LOG_LINE.match(line):
                break
        signalled = time.monotonic()
        trainer.send_signal(signal.SIGTERM)
        output, _ = trainer.communicate(timeout=30)
    finally:
        trainer.kill()
    assert trainer.returncode == ExitCode.DONE, output
    assert time.monotonic() - signalled < 30
    stopped_at = int(re.search(r"stopped at step (\d+) on request", output).group(1))
    assert stopped_at > MAX_STEPS
    assert checkpoint_state(root / "train" / "default") == f"model.ckpt-{stopped_at}"


@pytest.mark.slow
def test_nan_loss_stops_with_exit_3_and_keeps_the_last_good_checkpoint(trained, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained[0], root)
    # The same run with a learning rate that makes it diverge: a change of what it learns,
    # which the trainer takes only when told to.
    diverging = run_app("train", *settings(root, RUN, **{
        "train.max_steps": 400, "tutorial.initial_learning_rate": 1e12,
        "train.allow_changes": "true"}), timeout=600)
    assert diverging.returncode == ExitCode.DIVERGED, diverging.stdout + diverging.stderr
    assert "error: the loss became NaN or infinite at step" in diverging.stderr
    assert "The last good checkpoint is kept: model.ckpt-300" in diverging.stderr
    assert checkpoint_state(root / "train" / "default") == "model.ckpt-300"
    shutil.rmtree(root / "train" / "default" / "eval")  # so that it is evaluated anew
    evaluation = run_app("eval", "--once", *settings(root, RUN), timeout=600)
    assert "precision @ 1 = " in evaluation.stdout and "(step 300;" in evaluation.stdout


def test_the_trainer_runs_several_steps_per_call_between_its_log_lines(trained):
    root, train_log, _ = trained
    progress = json.loads((root / "train" / "default" / "progress.json").read_text())
    # Summaries every 50 steps, checkpoints every 100, progress lines by time (which end no
    # call): after each summary step the trainer makes one call of 49 steps (fewer only when 2 s
    # of training would not fit in a call).
    assert progress["step"] == MAX_STEPS
    assert progress["steps_per_call"] >= 5, progress
    assert 0 <= progress["summary_share"] < 1, progress


def test_summaries_costly_beside_a_step_are_spaced_wider_on_their_grid_and_end_the_run(tmp_path):
    # At batch 1 a summary step costs about one plain step more (bench/summary_cost.py): every
    # 10 steps that is ~9% of the time, which the trainer's 2% spaces out to every 80 or so.
    run = {"data.synthetic_train_examples": 1000, "data.synthetic_test_examples": 100,
           "eval.num_examples": 100, "train.batch_size": 1, "train.max_steps": 400,
           "runtime.summary_every_steps": 10, "runtime.summary_max_share": 0.02,
           "runtime.checkpoint_every_steps": "null"}
    train = run_app("train", *settings(tmp_path, run), timeout=600)
    assert train.returncode == ExitCode.DONE, train.stdout + train.stderr
    steps = scalar_steps(tmp_path / "train" / "default", "total_loss")
    assert steps[0] == 0 and steps[-1] == 399, steps  # every curve reaches the end of the run
    assert all(step % 10 == 0 for step in steps[:-1]), steps
    assert len(steps) < 400 // 10 // 2, steps  # not every 10 steps: wider
    last_line = LOG_LINE.findall(train.stdout)[-1]
    assert last_line[0] == "400" and last_line[-1], last_line  # saying the summaries' share
