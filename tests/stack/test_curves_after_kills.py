"""After kill -9s, what TensorBoard shows is still true: the trainer killed at random points
between its checkpoints (and eval once), each time restarted by supervisord and resumed from its
checkpoint, then trained to the end; TensorBoard's HTTP API (the stack's real server, with
--load_fast false as the appliance runs it) then shows every curve of the training run and of
its eval run with each step once, in order. Also: what a kill leaves of a save is removed at the
next start, a checkpoint a user kept is not, and nothing is left in the temp folder.

The scenario is tests/harness/faults/curves.py, which bench.faults runs with 20 kills.
"""
from __future__ import annotations

import pytest

from tests.harness.faults.curves import (hparams_problems, killed_and_resumed,
                                         summary_steps_written_twice)
from tests.harness.tensorboard_api import going_back

pytestmark = pytest.mark.stack

KILLS = 3
TRAINING_RUN = "default"
EVAL_RUN = "default/eval"
# Every kind of data each run has, as its tab shows it (HParams has a test of its own).
RUN_KINDS = [(TRAINING_RUN, kind) for kind in ("scalars", "histograms", "distributions",
                                               "images", "text")] + [
    (EVAL_RUN, kind) for kind in ("scalars", "images", "pr_curves")]


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    return killed_and_resumed(tmp_path_factory.mktemp("killed_and_resumed"), KILLS)


def test_the_kills_made_the_trainer_write_summary_steps_twice(killed):
    # Otherwise the tests below would have nothing to find.
    assert len(killed.kills) == KILLS
    assert summary_steps_written_twice(killed), killed.trained_twice


@pytest.mark.parametrize("run, kind", RUN_KINDS, ids=[f"{run} {kind}" for run, kind in RUN_KINDS])
def test_no_curve_repeats_a_step_or_runs_backward(killed, run, kind):
    shown = {key: steps for key, steps in killed.curves[run].items() if key[0] == kind}
    assert shown, f"TensorBoard shows no {kind} of run {run}"
    assert going_back(shown) == []


def test_hparams_shows_the_run_once_with_its_metrics_at_their_newest_step(killed):
    assert hparams_problems(killed) == []
    metrics = killed.hparams[TRAINING_RUN]["metrics"]
    assert set(metrics) == {"precision @ 1", "cross_entropy", "total_loss",
                            "hyperparameter_changes"}
    assert metrics["hyperparameter_changes"] == 0  # its restarts changed nothing it learns


def test_a_checkpoint_newer_than_the_listed_ones_is_removed_at_the_next_start(killed):
    assert set(killed.planted_newer) <= set(killed.removed_at_start)
    assert not any((killed.stack.run_dir / name).exists() for name in killed.planted_newer)
    lines = killed.stack.log()
    for name in killed.planted_newer:
        assert (f"train | removed {name}: a save cut short (by a kill or a full disk) before the "
                f"state file listed it") in lines


def test_an_older_unlisted_checkpoint_a_user_kept_stays(killed):
    assert killed.planted_older
    assert all((killed.stack.run_dir / name).exists() for name in killed.planted_older)
    assert not set(killed.planted_older) & set(killed.removed_at_start)


def test_no_save_cut_short_is_left_once_a_trainer_has_resumed(killed):
    assert killed.left_after_resume == []


def test_train_and_eval_leave_nothing_in_the_temp_folder(killed):
    assert killed.temp_left == []


def test_eval_killed_is_restarted_and_never_crashes(killed):
    assert killed.eval_kills == 1
    assert killed.eval_crashes == []


def test_every_checkpoint_left_after_the_kills_restores(killed):
    # The user's older unlisted checkpoint aside, which the audit would name as unlisted.
    assert killed.checkpoint_problems == []
