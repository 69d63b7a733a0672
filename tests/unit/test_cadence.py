"""When the trainer writes what, at any pace: the rules of app/train/cadence.py, given the step and
measured times as a user's config and a GPU's or a CPU's pace would give them."""
import pytest

from app import config as configuration
from app.train import cadence


def runtime(**keys):
    return configuration.load(None, [f"runtime.{key}={value}" for key, value in keys.items()],
                              {}).runtime


GPU_STEP, CPU_STEP = 0.0005, 0.1  # seconds a step of the tutorial net at batch 128
SUMMARY_EXTRA = 0.020  # what a summary step costs beyond a plain one (bench/summary_cost.py)


def share_of_time(settings, secs_per_step, extra_secs, steps=1_000_000):
    """The part of a run's time its summaries take when the trainer spaces them by what it
    measures (as CallSizes does, one summary at a time), over `steps` steps."""
    spacing, step, summaries = settings.summary_every_steps, 0, 0
    while step < steps:
        summaries += 1
        spacing = cadence.summary_spacing(settings, spacing, extra_secs, secs_per_step)
        step += spacing
    return summaries * extra_secs / (steps * secs_per_step + summaries * extra_secs)


@pytest.mark.parametrize("secs_per_step", [0.0003, GPU_STEP, 0.006, CPU_STEP, 0.3])
def test_summaries_take_at_most_their_share_of_the_time_at_any_pace(secs_per_step):
    settings = runtime()
    assert settings.summary_max_share == 0.02
    assert share_of_time(settings, secs_per_step, SUMMARY_EXTRA) <= 0.02


def test_summary_spacing_is_summary_every_steps_where_summaries_are_cheap_beside_a_step():
    assert cadence.summary_spacing(runtime(), 100, SUMMARY_EXTRA, CPU_STEP) == 100
    assert cadence.summary_spacing(runtime(summary_max_share="null"), 100, 10.0, GPU_STEP) == 100


def test_summary_spacing_doubles_on_the_grid_at_most_once_a_summary_and_narrows_back():
    settings = runtime()
    # At a GPU's pace 2% of the time is 20 ms every 2,000 steps: 100 x 2^5 = 3,200 steps.
    spacings = [100]
    for _ in range(7):
        spacings.append(cadence.summary_spacing(settings, spacings[-1], SUMMARY_EXTRA, GPU_STEP))
    assert spacings == [100, 200, 400, 800, 1600, 3200, 3200, 3200]
    # Summaries got cheaper (or steps slower): the spacing narrows back at once.
    assert cadence.summary_spacing(settings, 3200, SUMMARY_EXTRA, CPU_STEP) == 100


def test_the_last_step_always_writes_summaries_whatever_the_spacing():
    due = [step for step in range(1000) if cadence.summary_due(step, 400, max_steps=1000)]
    assert due == [0, 400, 800, 999]


def test_a_checkpoint_by_steps_waits_for_the_min_gap_and_one_by_seconds_does_not():
    settings = runtime()  # every 1000 steps, every 600 s, at least 5 s apart
    assert cadence.checkpoint_due(settings, 1000, secs_since_save=5.0)
    assert not cadence.checkpoint_due(settings, 1000, secs_since_save=0.5)  # a GPU's 1000 steps
    assert not cadence.checkpoint_due(settings, 1500, secs_since_save=30.0)
    assert cadence.checkpoint_due(settings, 1501, secs_since_save=600.0)
    no_gap = runtime(checkpoint_min_gap_secs="null")
    assert cadence.checkpoint_due(no_gap, 1000, secs_since_save=0.5)
    steps_only = runtime(checkpoint_every_secs="null")
    assert not cadence.checkpoint_due(steps_only, 1501, secs_since_save=10_000.0)


def test_progress_lines_by_time_after_the_first_call_and_at_the_end():
    settings = runtime()
    assert settings.log_every_secs == 15.0 and settings.log_every_steps is None
    assert cadence.progress_line_due(settings, 1, 1000, last_line_step=None, secs_since_line=0.1)
    assert not cadence.progress_line_due(settings, 900, 1000, 1, secs_since_line=14.9)
    assert cadence.progress_line_due(settings, 900, 1000, 1, secs_since_line=15.0)
    assert cadence.progress_line_due(settings, 1000, 1000, 999, secs_since_line=0.01)


def test_progress_lines_by_steps_where_log_every_steps_is_set_when_a_call_crosses_a_multiple():
    settings = runtime(log_every_steps=10)
    assert not cadence.progress_line_due(settings, 19, 1000, 11, secs_since_line=100.0)
    assert cadence.progress_line_due(settings, 21, 1000, 19, secs_since_line=0.01)
    assert cadence.progress_line_due(settings, 40, 1000, 21, secs_since_line=0.01)


def test_the_summaries_share_is_unknown_until_one_is_measured():
    share = cadence.SummaryShare(loop_secs=10.0)
    assert share.share is None
    share.add(None)  # a summary step before any pace
    assert share.share is None
    share.add(0.1)
    share.add(0.1)
    assert share.share == pytest.approx(0.02)
