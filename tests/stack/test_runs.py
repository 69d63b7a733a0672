"""Experiments side by side: runs are folders of the volume, each shown by TensorBoard as a run of
its own, all evaluated by the one eval of the stack, compared in HParams.

Three stacks, each a story a user lives through, told by a module fixture and checked by the
tests one observation at a time (what was seen on the way is in stack.observed):

  two_runs    the stack trains its run (`default`); beside it a second trainer is started on
              another run with another learning rate (`python -m app train --set paths.run=...`,
              as `docker compose run` starts one); a third on that run while it trains is
              refused; the second is killed (kill -9) while it holds the run's lock and started
              again.
  sweep       a stack whose config file lists a sweep of two runs, stopped (SIGTERM to
              supervisord, as `docker stop`) during the second run, then started again.
  old_volume  a volume of the layout before runs had folders (one run at the volume's root:
              the trained stack's run as such a version left it), under a stack that trains on.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import time

import pytest

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.checkpoints import newest_listed
from tests.harness.native_stack import NativeStack, small_config
from tests.harness.tensorboard_api import hparams_rows
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.stack

MAX_STEPS = 60
CHECKPOINT_EVERY = 20
RELOAD_INTERVAL_SECS = 2
# Enough checkpoints kept that none is rotated away before eval, at niceness 19, gets to it.
RUNS_CONFIG = small_config(train={"max_steps": MAX_STEPS},
                           runtime={"checkpoint_every_steps": CHECKPOINT_EVERY,
                                    "keep_checkpoints": 10, "summary_every_steps": 20,
                                    "log_every_secs": 0.001},
                           eval={"every_secs": 1},
                           tensorboard={"reload_every_secs": RELOAD_INTERVAL_SECS})
SECOND_RUN = "lr-0.05"
# Longer than the stack's run, so that it surely still trains when the fixture pauses it.
SECOND_MAX_STEPS = 120
# One step a call, each followed by its progress line: the fixture pauses it at a step it saw.
SECOND_TRAINER = ("train", f"--set=paths.run={SECOND_RUN}",
                  "--set=tutorial.initial_learning_rate=0.05",
                  f"--set=train.max_steps={SECOND_MAX_STEPS}", "--set=runtime.steps_per_call=1")
# What HParams shows for each run: the metrics of app/tensorboard/hparams.py, by their tags (the
# last, 0 unless a resume changed the run's hyperparameters).
METRICS = {"precision @ 1", "cross_entropy", "total_loss", "hyperparameter_changes"}


def evaluated_to_the_end(stack: NativeStack, run: str, max_steps: int = MAX_STEPS) -> bool:
    return any(result["step"] == max_steps for result in stack.eval_results(run))


def listed_by_tensorboard(stack: NativeStack, *runs: str) -> bool:
    try:
        return set(runs) <= set(stack.api.runs())
    except (OSError, AssertionError):
        return False


def hparams_at_the_final_steps(stack: NativeStack, final_steps: dict[str, int]) -> dict | None:
    """The HParams rows, once each run of `final_steps` has a row with every metric taken at its
    final step. Eval's result is on disk before TensorBoard's next reload reads it: a row read
    sooner holds an earlier step's metrics."""
    try:
        rows = hparams_rows(stack.api)
    except (OSError, AssertionError):
        return None
    for run, final_step in final_steps.items():
        row = rows.get(run, {})
        if not METRICS <= set(row.get("metrics", {})):
            return None
        if row["metric_steps"].get("precision @ 1") != final_step:
            return None
    return rows


# -- two runs side by side ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    stack = NativeStack(tmp_path_factory.mktemp("two_runs"), RUNS_CONFIG)
    observed = stack.observed = {}
    rng = random.Random(0)
    stack.start()
    try:
        wait_until(lambda: log_lines.EVAL_IDLE.search(stack.log()), 300,
                   "the stack to train and evaluate its run")
        wait_until(lambda: listed_by_tensorboard(stack, "default", "default/eval"), 60,
                   "TensorBoard to list the stack's run")

        # A second trainer beside the running stack, on another run.
        second = stack.start_app(*SECOND_TRAINER, name="second-trainer")
        first_event_file = wait_until(
            lambda: next((stack.train_dir / SECOND_RUN).glob("events.out.tfevents.*"), None),
            180, "the second trainer's first event file")
        seen_at = time.monotonic()
        wait_until(lambda: listed_by_tensorboard(stack, SECOND_RUN), 60,
                   f"TensorBoard to list {SECOND_RUN}", interval=0.2)
        observed["listed_after_secs"] = time.monotonic() - seen_at
        observed["first_event_file"] = first_event_file.name

        # Between two of its checkpoints, the second is paused (SIGSTOP: it holds the run's lock
        # and stays a trainer in training however long the third takes to start), a third is
        # started on its run, and the second is then killed (kill -9) as it holds the lock.
        wait_until(lambda: (newest_listed(stack.train_dir / SECOND_RUN) or 0) >= CHECKPOINT_EVERY,
                   180, f"a first checkpoint of {SECOND_RUN}")
        target = CHECKPOINT_EVERY + rng.randint(2, CHECKPOINT_EVERY - 2)
        wait_until(lambda: max(log_lines.steps(stack.log_of("second-trainer")), default=0)
                   >= target, 120, f"step {target} of {SECOND_RUN}", interval=0.05)
        os.kill(second.pid, signal.SIGSTOP)  # `python -m app train` itself
        observed["third"] = stack.run(sys.executable, "-m", "app", *SECOND_TRAINER, timeout=180)
        os.kill(second.pid, signal.SIGKILL)
        second.wait(timeout=30)
        observed["killed_after_step"] = max(log_lines.steps(stack.log_of("second-trainer")))
        observed["checkpoint_at_kill"] = newest_listed(stack.train_dir / SECOND_RUN)
        again = stack.start_app(*SECOND_TRAINER, name="second-trainer-again")
        observed["again_exit_code"] = again.wait(timeout=300)

        wait_until(lambda: evaluated_to_the_end(stack, SECOND_RUN, SECOND_MAX_STEPS), 180,
                   f"eval to evaluate {SECOND_RUN} to the end")
        observed["hparams"] = wait_until(
            lambda: hparams_at_the_final_steps(stack, {"default": MAX_STEPS,
                                                       SECOND_RUN: SECOND_MAX_STEPS}),
            60, "HParams to show both runs with their metrics at their final steps")
        observed["runs"] = stack.api.runs()
        observed["states"] = stack.program_states()
        yield stack
    finally:
        stack.stop()


def test_a_second_trainer_beside_the_stack_trains_its_own_run(two_runs):
    assert two_runs.observed["again_exit_code"] == ExitCode.DONE
    run_dir = two_runs.train_dir / SECOND_RUN
    assert newest_listed(run_dir) == SECOND_MAX_STEPS
    assert f"tutorial:\n  initial_learning_rate: 0.05" in (run_dir / "run.yaml").read_text()
    assert newest_listed(two_runs.run_dir) == MAX_STEPS  # the stack's own run, untouched


def test_the_running_eval_evaluates_the_second_run_into_its_own_results(two_runs):
    steps = [result["step"] for result in two_runs.eval_results(SECOND_RUN)]
    assert steps == sorted(set(steps)) and steps[-1] == SECOND_MAX_STEPS
    assert all(step % CHECKPOINT_EVERY == 0 for step in steps), steps  # its checkpoints'
    log = two_runs.log()
    assert log_lines.find(log_lines.PRECISION, log, run=SECOND_RUN, step=SECOND_MAX_STEPS)
    assert log.count("spawned: 'eval'") == 1  # the same eval that evaluated the stack's run


def test_tensorboard_lists_the_second_run_within_a_few_reload_intervals(two_runs):
    assert {SECOND_RUN, f"{SECOND_RUN}/eval"} <= set(two_runs.observed["runs"])
    assert two_runs.observed["listed_after_secs"] < 3 * RELOAD_INTERVAL_SECS + 2


def test_hparams_has_one_row_per_run_with_its_learning_rate_and_metrics(two_runs):
    rows = two_runs.observed["hparams"]
    assert sorted(rows) == ["default", SECOND_RUN]
    assert {run: row["groups"] for run, row in rows.items()} == {"default": 1, SECOND_RUN: 1}
    assert {run: row["hparams"]["tutorial.initial_learning_rate"] for run, row in rows.items()} == {
        "default": 0.1, SECOND_RUN: 0.05}
    for run, row in rows.items():
        assert set(row["metrics"]) == METRICS, run
        assert 0 <= row["metrics"]["precision @ 1"] <= 1
        precision = two_runs.eval_results(run)[-1]["precision_at_1"]
        assert row["metrics"]["precision @ 1"] == pytest.approx(precision, abs=1e-6)


def test_a_trainer_on_a_run_in_training_exits_2_naming_the_run(two_runs):
    third = two_runs.observed["third"]
    assert third.returncode == ExitCode.BAD_INPUT, third.stdout + third.stderr
    [refusal] = log_lines.RUN_BUSY.finditer(third.stderr)
    assert refusal["run"] == SECOND_RUN
    assert "give this one another paths.run" in third.stderr


def test_after_a_kill_9_of_the_trainer_holding_the_lock_a_new_one_starts(two_runs):
    killed_at = two_runs.observed["checkpoint_at_kill"]
    again = two_runs.log_of("second-trainer-again")
    assert not log_lines.RUN_BUSY.search(again)
    [resumed] = log_lines.RESUMED.finditer(again)
    assert int(resumed["step"]) == killed_at < two_runs.observed["killed_after_step"]


def test_eval_keeps_running_through_both_runs(two_runs):
    assert two_runs.observed["states"] == {"train": "EXITED", "eval": "RUNNING",
                                           "tensorboard": "RUNNING"}


# -- a sweep, stopped during its second run ----------------------------------------------------

SWEEP = [{"run": "sweep-a", "set": {"tutorial.initial_learning_rate": 0.05}},
         {"run": "sweep-b", "set": {"tutorial.initial_learning_rate": 0.02}}]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    stack = NativeStack(tmp_path_factory.mktemp("sweep"), {**RUNS_CONFIG, "sweep": SWEEP})
    observed = stack.observed = {}
    stack.start()
    try:
        second = stack.train_dir / "sweep-b"
        wait_until(lambda: (newest_listed(second) or 0) >= CHECKPOINT_EVERY, 400,
                   "the sweep's second run to save a checkpoint")
        started = log_lines.find(log_lines.SWEEP_RUN_STARTED, stack.log(), run="sweep-b")[0]
        observed["second_last_logged_step"] = max(log_lines.steps(stack.log()[started.end():]))
        observed.update(stack.stop())
        observed["second_stopped_at"] = newest_listed(second)
        observed["first_log"] = stack.log()
        stack.start()
        wait_until(lambda: log_lines.SWEEP_DONE.search(stack.log(since_start=True)), 400,
                   "the restarted sweep to finish")
        wait_until(lambda: all(evaluated_to_the_end(stack, entry["run"]) for entry in SWEEP), 180,
                   "eval to evaluate both runs to the end")
        observed["hparams"] = wait_until(
            lambda: hparams_at_the_final_steps(stack, {entry["run"]: MAX_STEPS for entry in SWEEP}),
            60, "HParams to show both runs with their metrics at their final steps")
        yield stack
    finally:
        stack.stop()


def test_a_sweep_trains_each_of_its_runs_in_a_folder_of_its_own(sweep):
    for entry in SWEEP:
        assert newest_listed(sweep.train_dir / entry["run"]) == MAX_STEPS
    assert not (sweep.train_dir / "default").exists()  # a sweep trains its runs, not paths.run


def test_a_stop_during_the_second_run_ends_the_sweep_after_its_save(sweep):
    stopped_at = sweep.observed["second_stopped_at"]
    log = sweep.observed["first_log"]
    assert log_lines.find(log_lines.SWEEP_STOPPED, log, run="sweep-b")
    assert stopped_at >= sweep.observed["second_last_logged_step"]  # the step reached, saved
    assert log_lines.find(log_lines.SAVED, log, step=stopped_at)
    assert sweep.observed["exit_code"] == ExitCode.DONE


def test_the_restarted_sweep_skips_the_finished_run(sweep):
    log = sweep.log(since_start=True)
    [skipped] = log_lines.SWEEP_RUN_SKIPPED.finditer(log)
    assert skipped["run"] == "sweep-a" and skipped["reason"].startswith("is done")
    assert [match["run"] for match in log_lines.SWEEP_RUN_STARTED.finditer(log)] == ["sweep-b"]


def test_the_restarted_sweep_resumes_the_second_run_from_its_checkpoint(sweep):
    [resumed] = log_lines.RESUMED.finditer(sweep.log(since_start=True))
    assert int(resumed["step"]) == sweep.observed["second_stopped_at"]


def test_hparams_compares_the_sweeps_runs(sweep):
    rows = sweep.observed["hparams"]
    assert sorted(rows) == ["sweep-a", "sweep-b"]
    assert {run: row["hparams"]["tutorial.initial_learning_rate"] for run, row in rows.items()} == {
        entry["run"]: entry["set"]["tutorial.initial_learning_rate"] for entry in SWEEP}
    assert all(set(row["metrics"]) == METRICS for row in rows.values())


# -- a volume of the old layout ------------------------------------------------------------------

# What a run kept at the volume's root before runs had folders: its checkpoints and state file,
# its event files, eval's folder, the export and the Projector's config.
OLD_LAYOUT = ("checkpoint", "model.ckpt-*", "events.out.tfevents.*", "eval", "export",
              "projector_config.pbtxt")


@pytest.fixture(scope="module")
def old_volume(tmp_path_factory, trained_stack):
    folder = tmp_path_factory.mktemp("old_volume")
    volume = folder / "train"
    volume.mkdir()
    kept = []
    for pattern in OLD_LAYOUT:
        for path in sorted(trained_stack.run_dir.glob(pattern)):
            copy = shutil.copytree if path.is_dir() else shutil.copy2
            copy(path, volume / path.name)
            kept.append(path.name)
    trained_to = trained_stack.checkpoint_step()
    final_step = trained_to + CHECKPOINT_EVERY
    stack = NativeStack(folder, small_config(train={"max_steps": final_step}))
    stack.observed = {"kept": kept, "trained_to": trained_to}
    stack.start()

    try:
        wait_until(lambda: evaluated_to_the_end(stack, "default", final_step),
                   400, "the old volume's run to train on and be evaluated")
        stack.observed["hparams"] = wait_until(
            lambda: hparams_at_the_final_steps(stack, {"default": final_step}), 60,
            f"HParams to show the run with its metrics at step {final_step}")
        stack.observed["runs"] = stack.api.runs()
        yield stack
    finally:
        stack.stop()


def test_an_old_volume_is_moved_into_the_runs_folder_nothing_deleted(old_volume):
    [moved] = log_lines.MOVED_OLD_LAYOUT.finditer(old_volume.log())
    assert moved["run_dir"] == str(old_volume.run_dir)
    for name in old_volume.observed["kept"]:
        assert (old_volume.run_dir / name).exists(), name
    at_the_root = {path.name for path in old_volume.train_dir.iterdir()
                   if not path.name.startswith(".")}
    assert at_the_root == {"default"}


def test_an_old_volume_resumes_from_its_checkpoint(old_volume):
    [resumed] = log_lines.RESUMED.finditer(old_volume.log())
    assert int(resumed["step"]) == old_volume.observed["trained_to"]
    assert newest_listed(old_volume.run_dir) == old_volume.observed["trained_to"] + CHECKPOINT_EVERY


def test_an_old_volume_keeps_its_eval_history_and_goes_on(old_volume):
    steps = [result["step"] for result in old_volume.eval_results()]
    assert steps[-1] == old_volume.observed["trained_to"] + CHECKPOINT_EVERY
    assert old_volume.observed["trained_to"] in steps and steps == sorted(set(steps))


def test_an_old_volume_shows_in_tensorboard_and_hparams_with_its_metrics(old_volume):
    assert {"default", "default/eval"} <= set(old_volume.observed["runs"])
    row = old_volume.observed["hparams"]["default"]
    assert set(row["metrics"]) == METRICS
    assert row["metrics"]["precision @ 1"] == pytest.approx(
        old_volume.eval_results()[-1]["precision_at_1"], abs=1e-6)
