"""The appliance under faults, natively: the scenarios of tests/harness/faults at their quick size.

Each scenario runs once a module (a fixture) and returns what it saw: exit codes, log lines,
steps, files. Each test checks one promise against it: nothing lost to a kill or a stop, bad
input refused before anything starts, a full disk waited out, a neighbour's crash not felt by
the trainer. The bad-config table runs one test per case. The full size (20 kills, 10 stops,
60 s of racing) is `python -m bench.faults`, which prints the figures. Curves after kill -9s are
tests/stack/test_curves_after_kills.py.
"""
from __future__ import annotations

import os

import pytest

from app.exit_codes import ExitCode
from tests.harness.container_runs import DOCKER_STOP_GRACE_SECS
from tests.harness.faults.bad_configs import BAD_CONFIGS, run_bad_config
from tests.harness.faults.bad_data import bad_data
from tests.harness.faults.changed_model import changed_model
from tests.harness.faults.crash_loop import crash_loop
from tests.harness.faults.eval_race import eval_race
from tests.harness.faults.full_disk import EVAL_MAX_STEPS, eval_full_disk, full_disk
from tests.harness.faults.neighbours import neighbours
from tests.harness.faults.outcome import QUICK
from tests.harness.faults.stops import graceful_stop

pytestmark = [pytest.mark.faults, pytest.mark.stack]

needs_root_for_tmpfs = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounts a small tmpfs as train_dir (root only)")


# -- kill -9 the trainer at random moments ------------------------------------------------------

@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    return crash_loop(tmp_path_factory.mktemp("crash_loop"), QUICK.kills)


def test_trainer_killed_at_random_is_restarted_and_resumes_every_time(crashes):
    assert len(crashes.kills) == QUICK.kills
    assert [kill for kill in crashes.kills if kill.resumed is None] == []


def test_trainer_killed_never_resumes_behind_the_checkpoint_listed_at_the_kill(crashes):
    assert [kill for kill in crashes.kills
            if kill.resumed is not None and kill.resumed < (kill.checkpoint or 0)] == []


def test_trainer_killed_at_random_loses_at_most_its_last_checkpoint_interval(crashes):
    lost = [kill.steps_lost for kill in crashes.kills if kill.resumed is not None]
    assert max(lost, default=0) <= crashes.checkpoint_every_steps, crashes.kills


def test_trainer_killed_again_and_again_still_reaches_max_steps(crashes):
    assert crashes.newest_checkpoint == crashes.max_steps


def test_trainer_exits_at_once_after_reaching_max_steps(crashes):
    assert crashes.exit_secs <= 5, "seconds from reaching max_steps to the trainer's exit"


def test_every_checkpoint_a_kill_leaves_restores(crashes):
    assert crashes.problems_after_kills == []
    assert crashes.problems_at_the_end == []


def test_eval_never_crashes_while_the_trainer_is_killed(crashes):
    assert crashes.eval_crashes == []


# -- SIGTERM to supervisord (docker stop) at random moments ------------------------------------

@pytest.fixture(scope="module")
def stops(tmp_path_factory):
    return graceful_stop(tmp_path_factory.mktemp("graceful_stop"), QUICK.stops,
                         QUICK.stop_within_secs).stops


def test_docker_stop_at_random_saves_the_step_reached(stops):
    assert len(stops) == QUICK.stops
    assert [(str(stop), stop.newest_checkpoint) for stop in stops] == [
        (str(stop), stop.reached) for stop in stops]


def test_docker_stop_at_random_is_done_within_the_grace(stops):
    assert max(stop.stopped_after for stop in stops) < DOCKER_STOP_GRACE_SECS


def test_docker_stop_exits_0_leaving_nothing_running(stops):
    assert [(str(stop), stop.exit_code, stop.left_running) for stop in stops] == [
        (str(stop), ExitCode.DONE, []) for stop in stops]


def test_a_stopped_trainer_says_at_which_step_it_stopped(stops):
    assert [str(stop) for stop in stops
            if stop.last_step is not None and not stop.said_it_stopped] == []


# -- eval racing the trainer's rotation --------------------------------------------------------

@pytest.fixture(scope="module")
def race(tmp_path_factory):
    return eval_race(tmp_path_factory.mktemp("eval_race"), QUICK.race_secs)


def test_eval_racing_rotation_never_crashes_nor_prints_a_traceback(race):
    assert race.eval_crashes == []
    assert race.eval_tracebacks == []


def test_the_trainer_never_crashes_while_eval_races_its_rotation(race):
    assert race.trainer_crashes == []


def test_eval_racing_rotation_evaluates_some_and_skips_the_rest(race):
    # The race began once eval had evaluated a first checkpoint; a checkpoint every step is more
    # than it can keep up with, so it evaluated the newest it found and passed over the rest.
    assert race.checkpoints_written > 2 * race.checkpoints_evaluated, race.figures()


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c.name for c in BAD_CONFIGS])
def test_bad_config_exits_2_naming_it_and_starts_and_writes_nothing(case, tmp_path):
    if case.setup == "read_only" and os.geteuid() != 0:
        pytest.skip("a read-only volume is a tmpfs mounted here, which needs root")
    run = run_bad_config(case, tmp_path / "case")
    assert run.exit_code == ExitCode.BAD_INPUT, run.output[-300:]
    assert case.names in run.output, run.output[-300:]
    assert run.left_running == []
    assert run.written == []


@pytest.fixture(scope="module")
def model_changed(tmp_path_factory):
    return changed_model(tmp_path_factory.mktemp("changed_model"))


def test_a_changed_model_is_refused_naming_train_recipe(model_changed):
    assert model_changed.exit_code == ExitCode.BAD_INPUT, model_changed.output[-500:]
    assert "train.recipe" in model_changed.output


def test_a_changed_model_leaves_the_old_run_as_it_was(model_changed):
    assert model_changed.checkpoints_after == model_changed.checkpoints_before
    assert model_changed.problems == []


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    return bad_data(tmp_path_factory.mktemp("bad_data")).runs


def test_bad_data_exits_2_through_the_appliance_and_the_trainer_alone(damaged):
    assert {(run.case, run.who): run.exit_code for run in damaged} == {
        (run.case, run.who): ExitCode.BAD_INPUT for run in damaged}


def test_bad_data_is_refused_naming_the_file(damaged):
    assert [(run.case, run.who, run.names, run.output[-400:]) for run in damaged
            if run.names not in run.output] == []


def test_bad_data_starts_nothing(damaged):
    assert [(run.case, run.who, run.left_running) for run in damaged
            if run.left_running or run.started_supervisord] == []


def test_bad_data_is_never_trained_on(damaged):
    assert [(run.case, run.who, run.trained) for run in damaged if run.trained] == []


# -- a full disk ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def disk_filled(tmp_path_factory):
    return full_disk(tmp_path_factory.mktemp("full_disk"))


@needs_root_for_tmpfs
def test_the_trainer_says_the_disk_is_full_naming_train_dir(disk_filled):
    assert str(disk_filled.train_dir) in disk_filled.trainer_said


@needs_root_for_tmpfs
def test_the_trainer_waits_out_a_full_disk_without_exiting(disk_filled):
    assert disk_filled.exited_while_full == []


@needs_root_for_tmpfs
def test_a_full_disk_keeps_the_listed_checkpoint_restorable(disk_filled):
    assert disk_filled.listed_when_full is not None, \
        "the disk filled before the first checkpoint; make the tmpfs larger"
    assert disk_filled.listed_restores is None


@needs_root_for_tmpfs
def test_a_save_failed_on_a_full_disk_leaves_nothing_taking_space(disk_filled):
    assert disk_filled.partial_saves == []


@needs_root_for_tmpfs
def test_once_space_is_freed_training_goes_on_with_no_step_lost(disk_filled):
    assert disk_filled.steps_lost == 0


@needs_root_for_tmpfs
def test_after_a_full_disk_a_restart_resumes_from_the_newest_checkpoint(disk_filled):
    assert disk_filled.restart_resumed_from == disk_filled.newest_at_restart
    assert disk_filled.newest_at_restart >= disk_filled.newest_before_restart


@pytest.fixture(scope="module")
def eval_disk_filled(tmp_path_factory):
    return eval_full_disk(tmp_path_factory.mktemp("eval_full_disk"))


@needs_root_for_tmpfs
def test_eval_says_once_that_the_disk_is_full(eval_disk_filled):
    assert eval_disk_filled.disk_full_lines_while_full == 1


@needs_root_for_tmpfs
def test_eval_waits_out_a_full_disk_without_exiting(eval_disk_filled):
    assert eval_disk_filled.exited_while_full == []
    assert eval_disk_filled.eval_crashes == []
    assert eval_disk_filled.eval_starts == 1


@needs_root_for_tmpfs
def test_eval_prints_no_traceback_over_a_full_disk(eval_disk_filled):
    assert eval_disk_filled.eval_tracebacks == []


@needs_root_for_tmpfs
def test_eval_after_a_full_disk_records_each_checkpoint_once_in_whole_lines(eval_disk_filled):
    results = eval_disk_filled.whole_results
    assert len(results) == len(eval_disk_filled.results_lines), "results.jsonl has lines cut short"
    assert [result["step"] for result in results] == [25, 50, EVAL_MAX_STEPS]


@needs_root_for_tmpfs
def test_eval_after_a_full_disk_shows_each_step_once_in_tensorboard(eval_disk_filled):
    assert eval_disk_filled.eval_curve_problems == []


# -- neighbours die -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def neighbours_killed(tmp_path_factory):
    return neighbours(tmp_path_factory.mktemp("neighbours"))


@pytest.mark.parametrize("program", ["tensorboard", "eval"])
def test_a_killed_neighbour_is_restarted_while_training_goes_on(neighbours_killed, program):
    assert neighbours_killed.steps_while_down[program] > 0, neighbours_killed.figures()


def test_the_trainer_is_not_restarted_when_its_neighbours_are(neighbours_killed):
    assert not neighbours_killed.trainer_restarted, neighbours_killed.trainer_exits
