"""How many steps the trainer runs in one call: up to the next thing that is due, never past it,
never longer than a stop may wait, and never cut short for a progress line."""
import pytest
import tensorflow as tf

from app import config as configuration
from app.train.call_size import MAX_SECS_PER_CALL, CallSizes, steps_to_run


def train(max_steps=1000, **keys):
    settings = {"summary_every_steps": 100, "checkpoint_every_steps": 250,
                "steps_per_call": "auto", **keys}
    return configuration.load(None, [f"train.max_steps={max_steps}"] + [
        f"runtime.{key}={value}" for key, value in settings.items()], {})


FAST = 0.001  # seconds a step: as on a GPU, where thousands would fit in a call


@pytest.mark.parametrize("step, expected, why", [
    (1, 99, "up to the summary step 100, which runs alone"),
    (101, 99, "up to the summary step 200"),
    (201, 49, "the checkpoint at 250"),
    (250, 50, "the summary step 300"),
    (901, 98, "the last step, 999, writes summaries: stop before it"),
])
def test_a_call_ends_where_something_is_due(step, expected, why):
    assert steps_to_run(train(), step, FAST) == expected, why


@pytest.mark.parametrize("log", [["log_every_secs=0.001"], ["log_every_steps=1"],
                                 ["log_every_steps=10"]])
def test_a_progress_line_never_ends_a_call(log):
    settings = train(**dict(setting.split("=") for setting in log))
    assert steps_to_run(settings, 1, FAST) == 99


def test_a_call_never_outlasts_the_stop_bound():
    settings = train(summary_every_steps=10_000, checkpoint_every_steps="null", max_steps=100_000)
    assert steps_to_run(settings, 1, secs_per_step=0.05) == int(MAX_SECS_PER_CALL / 0.05)
    assert steps_to_run(settings, 1, secs_per_step=30.0) == 1  # a slow step is a call of its own
    assert steps_to_run(settings, 1, secs_per_step=None) == 1  # no pace measured yet


def test_steps_per_call_caps_it():
    assert steps_to_run(train(steps_per_call=4), 1, FAST) == 4
    assert steps_to_run(train(steps_per_call=1), 1, FAST) == 1
    assert steps_to_run(train(steps_per_call=500), 1, FAST) == 99  # and never past a boundary


def test_a_call_ends_at_the_summary_spacing_the_loop_chose():
    assert steps_to_run(train(), 1, FAST, summary_spacing=200) == 199
    assert steps_to_run(train(), 201, FAST, summary_spacing=400) == 49  # the checkpoint at 250


def test_the_loop_sizes_its_calls_by_the_pace_of_plain_steps():
    sizes = CallSizes(train(), tf.distribute.get_strategy())
    assert sizes.steps(0) == 1  # a summary step runs alone
    assert sizes.steps(1) == 1  # no call timed yet
    sizes.timed(steps=1, seconds=FAST)
    assert sizes.steps(1) == 99
    sizes.timed(steps=10, seconds=10 * MAX_SECS_PER_CALL)  # a step now fills a call
    assert sizes.steps(1) == 1


def test_the_loop_spaces_its_summaries_by_what_a_summary_step_cost():
    sizes = CallSizes(train(max_steps=100_000), tf.distribute.get_strategy())
    assert sizes.timed_summary(0.5) is None  # no pace yet: nothing to measure it against
    sizes.timed(steps=100, seconds=100 * FAST)
    # 21 ms for a 1 ms step: 20 ms extra, 2% of 100 steps' 100 ms is 2 ms: the spacing doubles.
    assert sizes.timed_summary(FAST + 0.020) == pytest.approx(0.020)
    assert sizes.summary_spacing == 200
    assert [step for step in range(0, 801, 100) if sizes.summary_due(step)] == [0, 200, 400, 600,
                                                                                800]
    assert sizes.steps(1) == 199  # up to the summary step 200
