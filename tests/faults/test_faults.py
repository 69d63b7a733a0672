"""The appliance under faults, natively: bench/faults.py's scenarios at their quick size.

Each scenario checks the issue's promises itself and lists every one it saw broken in
`outcome.faults`; a test fails with that list and the figures. The bad-config corpus runs one
test per case. The full size (20 kills, 10 stops, 60 s of racing) is `python -m bench.faults`.
"""
from __future__ import annotations

import os

import pytest

from bench import faults

pytestmark = [pytest.mark.faults, pytest.mark.stack]


def assert_held(outcome: faults.Outcome) -> None:
    assert not outcome.faults, "\n".join(outcome.faults) + f"\nfigures: {outcome.figures}"


def test_trainer_killed_at_random_loses_at_most_its_last_checkpoint_interval(tmp_path):
    outcome = faults.crash_loop(tmp_path, faults.QUICK.kills)
    assert_held(outcome)
    assert outcome.figures["kills"] == faults.QUICK.kills
    assert outcome.figures["steps_lost_per_kill_max"] <= outcome.figures["checkpoint_every_steps"]


def test_docker_stop_at_random_saves_the_step_reached_within_the_grace(tmp_path):
    outcome = faults.graceful_stop(tmp_path, faults.QUICK.stops, faults.QUICK.stop_within_secs)
    assert_held(outcome)
    assert outcome.figures["slowest_stop_secs"] < faults.DOCKER_STOP_GRACE_SECS


def test_eval_racing_rotation_skips_but_never_crashes(tmp_path):
    outcome = faults.eval_race(tmp_path, faults.QUICK.race_secs)
    assert_held(outcome)
    assert outcome.figures["checkpoints_written"] > 2 * outcome.figures["checkpoints_evaluated"]


@pytest.mark.parametrize("case", faults.BAD_CONFIGS, ids=[c.name for c in faults.BAD_CONFIGS])
def test_bad_config_exits_2_naming_it_and_starts_and_writes_nothing(case, tmp_path):
    if case.setup == "read_only" and os.geteuid() != 0:
        pytest.skip("a read-only volume is a tmpfs mounted here, which needs root")
    assert faults.refuses_bad_config(case, tmp_path / "case") is None


def test_a_changed_model_is_refused_and_the_old_run_kept(tmp_path):
    assert_held(faults.changed_model(tmp_path))


def test_bad_data_is_refused_before_any_training(tmp_path):
    assert_held(faults.bad_data(tmp_path))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs as train_dir (root only)")
def test_full_disk_waits_keeps_its_checkpoint_and_goes_on_once_freed(tmp_path):
    outcome = faults.full_disk(tmp_path)
    assert_held(outcome)
    assert outcome.figures["steps_lost"] == 0


def test_tensorboard_and_eval_killed_are_restarted_while_training_goes_on(tmp_path):
    assert_held(faults.neighbours(tmp_path))
