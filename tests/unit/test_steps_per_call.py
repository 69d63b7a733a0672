"""How many steps the trainer runs in one call: up to the next thing that is due, never past it,
and never longer than a stop may wait."""
import pytest
import tensorflow as tf

from app import config as configuration
from app.train.call_size import MAX_SECS_PER_CALL, CallSizes, steps_to_run, summary_due


def train(max_steps=1000, **keys):
    settings = {"log_every_steps": 10, "summary_every_steps": 100,
                "checkpoint_every_steps": 250, "steps_per_call": "auto", **keys}
    return configuration.load(None, [f"train.max_steps={max_steps}"] + [
        f"runtime.{key}={value}" for key, value in settings.items()], {})


FAST = 0.001  # seconds a step: as on a GPU, where thousands would fit in a call


@pytest.mark.parametrize("step, expected, why", [
    (1, 9, "up to the log line at 10"),
    (10, 10, "the next log line"),
    (91, 9, "the summary step 100 runs alone: stop before it"),
    (101, 9, "the log line at 110"),
    (241, 9, "log line and checkpoint at 250"),
    (245, 5, "the checkpoint at 250"),
    (995, 4, "the last step, 999, writes summaries: stop before it"),
])
def test_a_call_ends_where_something_is_due(step, expected, why):
    assert steps_to_run(train(), step, FAST) == expected, why


def test_a_call_never_outlasts_the_stop_bound():
    settings = train(log_every_steps=10_000, summary_every_steps=10_000, checkpoint_every_steps=0,
                     max_steps=100_000)
    assert steps_to_run(settings, 1, secs_per_step=0.05) == int(MAX_SECS_PER_CALL / 0.05)
    assert steps_to_run(settings, 1, secs_per_step=30.0) == 1  # a slow step is a call of its own
    assert steps_to_run(settings, 1, secs_per_step=None) == 1  # no pace measured yet


def test_steps_per_call_caps_it():
    assert steps_to_run(train(steps_per_call=4), 1, FAST) == 4
    assert steps_to_run(train(steps_per_call=1), 1, FAST) == 1
    assert steps_to_run(train(steps_per_call=50), 1, FAST) == 9  # and never past a boundary


def test_summaries_at_their_cadence_and_at_the_last_step():
    assert [step for step in range(1000) if summary_due(train(), step)] == [
        0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999]


def test_the_loop_sizes_its_calls_by_the_pace_of_plain_steps():
    sizes = CallSizes(train(), tf.distribute.get_strategy())
    assert sizes.steps(0) == 1  # a summary step runs alone
    assert sizes.steps(1) == 1  # no call timed yet
    sizes.timed(steps=1, seconds=FAST)
    assert sizes.steps(1) == 9
    sizes.timed(steps=10, seconds=10 * MAX_SECS_PER_CALL)  # a step now fills a call
    assert sizes.steps(1) == 1
