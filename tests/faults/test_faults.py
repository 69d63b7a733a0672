"""The appliance under faults, natively: the scenarios of tests/harness/faults at their quick size.

Each scenario checks what the appliance promises (nothing lost to a kill or a stop, bad input
refused before anything starts, a neighbour's crash not felt by the trainer) and lists every
promise it saw broken in `outcome.faults`; a test fails with that list and the figures. The
bad-config table runs one test per case. The full size (20 kills, 10 stops, 60 s of racing) is
`python -m bench.faults`. Curves after kill -9s are tests/stack/test_curves_after_kills.py, which
checks that scenario item by item.
"""
from __future__ import annotations

import os

import pytest

from tests.harness.faults.bad_configs import BAD_CONFIGS, refuses_bad_config
from tests.harness.faults.bad_data import bad_data
from tests.harness.faults.changed_model import changed_model
from tests.harness.faults.crash_loop import crash_loop
from tests.harness.faults.eval_race import eval_race
from tests.harness.faults.full_disk import eval_full_disk, full_disk
from tests.harness.faults.neighbours import neighbours
from tests.harness.container_runs import DOCKER_STOP_GRACE_SECS
from tests.harness.faults.outcome import QUICK, Outcome
from tests.harness.faults.stops import graceful_stop

pytestmark = [pytest.mark.faults, pytest.mark.stack]


def assert_held(outcome: Outcome) -> None:
    assert not outcome.faults, "\n".join(outcome.faults) + f"\nfigures: {outcome.figures}"


def test_trainer_killed_at_random_loses_at_most_its_last_checkpoint_interval(tmp_path):
    outcome = crash_loop(tmp_path, QUICK.kills)
    assert_held(outcome)
    assert outcome.figures["kills"] == QUICK.kills
    assert outcome.figures["steps_lost_per_kill_max"] <= outcome.figures["checkpoint_every_steps"]


def test_docker_stop_at_random_saves_the_step_reached_within_the_grace(tmp_path):
    outcome = graceful_stop(tmp_path, QUICK.stops, QUICK.stop_within_secs)
    assert_held(outcome)
    assert outcome.figures["slowest_stop_secs"] < DOCKER_STOP_GRACE_SECS


def test_eval_racing_rotation_skips_but_never_crashes(tmp_path):
    outcome = eval_race(tmp_path, QUICK.race_secs)
    assert_held(outcome)
    assert outcome.figures["checkpoints_written"] > 2 * outcome.figures["checkpoints_evaluated"]


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c.name for c in BAD_CONFIGS])
def test_bad_config_exits_2_naming_it_and_starts_and_writes_nothing(case, tmp_path):
    if case.setup == "read_only" and os.geteuid() != 0:
        pytest.skip("a read-only volume is a tmpfs mounted here, which needs root")
    assert refuses_bad_config(case, tmp_path / "case") is None


def test_a_changed_model_is_refused_and_the_old_run_kept(tmp_path):
    assert_held(changed_model(tmp_path))


def test_bad_data_is_refused_before_any_training(tmp_path):
    assert_held(bad_data(tmp_path))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs as train_dir (root only)")
def test_full_disk_waits_keeps_its_checkpoint_and_goes_on_once_freed(tmp_path):
    outcome = full_disk(tmp_path)
    assert_held(outcome)
    assert outcome.figures["steps_lost"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs as train_dir (root only)")
def test_eval_waits_out_a_full_disk_says_so_once_and_loses_nothing(tmp_path):
    outcome = eval_full_disk(tmp_path)
    assert_held(outcome)
    assert outcome.figures["eval_crashes"] == 0
    assert outcome.figures["disk_full_lines_while_full"] == 1


def test_tensorboard_and_eval_killed_are_restarted_while_training_goes_on(tmp_path):
    assert_held(neighbours(tmp_path))
