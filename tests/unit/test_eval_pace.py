"""Eval's pace (app/eval/pace.py): how long it waits after a look that found nothing, and which of
a run's waiting checkpoints it evaluates."""
from pathlib import Path

import pytest

from app.eval import pace

DEFAULT_EVERY_SECS = 300.0


@pytest.mark.parametrize("short_of_max_steps, done, training, expected", [
    (0, 0, False, pace.LOOK_WHILE_TRAINING_SECS),   # no run yet: a trainer may be starting
    (0, 0, True, pace.LOOK_WHILE_TRAINING_SECS),    # a trainer before its first checkpoint
    (1, 0, False, pace.LOOK_WHILE_TRAINING_SECS),   # a run short of its max_steps
    (1, 2, False, pace.LOOK_WHILE_TRAINING_SECS),
    (0, 2, True, pace.LOOK_WHILE_TRAINING_SECS),    # every run done, but a trainer on one
    (0, 2, False, DEFAULT_EVERY_SECS),              # idle: the tutorial's schedule
])
def test_eval_looks_every_half_second_while_there_is_training_to_watch_else_every_secs(
        short_of_max_steps, done, training, expected):
    assert pace.LOOK_WHILE_TRAINING_SECS == 0.5
    assert pace.pause_after_look(short_of_max_steps, done, training,
                                 DEFAULT_EVERY_SECS) == expected


def test_a_pause_shorter_than_half_a_second_is_kept_while_training_too():
    assert pace.pause_after_look(1, 0, True, every_secs=0.2) == 0.2
    assert pace.pause_after_look(0, 1, False, every_secs=0.2) == 0.2


def waiting(*steps: int) -> list[Path]:
    return [Path(f"/volume/default/model.ckpt-{step}") for step in steps]


def test_behind_a_trainer_eval_takes_the_newest_and_passes_over_the_older_ones():
    newest, older = pace.to_evaluate(waiting(100, 200, 300), training=True)
    assert newest.name == "model.ckpt-300"
    assert [path.name for path in older] == ["model.ckpt-100", "model.ckpt-200"]


def test_one_waiting_checkpoint_is_evaluated_passing_over_none():
    assert pace.to_evaluate(waiting(100), training=True) == (waiting(100)[0], [])
    assert pace.to_evaluate(waiting(100), training=False) == (waiting(100)[0], [])


def test_a_run_nobody_trains_is_caught_up_in_full_oldest_first():
    assert pace.to_evaluate(waiting(100, 200, 300), training=False) == (waiting(100)[0], [])

