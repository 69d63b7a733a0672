"""The HParams tab: this run's hyperparameters beside its final metrics, one row per run.

TensorBoard shows every run of the volume, and the tab compares them side by side: which learning
rate, which recipe, which weight decay, and what precision each reached.

The trainer calls write_hparams once per start, under its writer (the run's folder), at the step it
starts from: after its session-start mark, so each start's record is the newest (TensorBoard shows
the first start's values for a run; its metrics are the newest values of these scalars). The
metrics are
scalars TensorBoard already has; the plugin finds each under the session's run plus the metric's
group, and shows its newest value:

    precision @ 1 (eval)   <run>/eval   "precision @ 1"
    cross entropy (eval)   <run>/eval   "cross_entropy"
    total loss (train)     <run>        "total_loss" (the 0.9 moving average)
    hyperparameter changes <run>        "hyperparameter_changes": how many values the run's
      (resumes)                         resumes changed (train.allow_changes); the values shown
                                        are its first start's, so a row with changes says so

(TensorBoard's hparams plugin finds no metrics for a session at the logdir's root, run "."; a
run in a folder of its own gets them: one reason runs are folders of the volume.)
"""
from __future__ import annotations

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from app.config import schema
from app.volume import layout

# The scalar counting the hyperparameters a run's resumes changed (train.allow_changes).
CHANGES_TAG = "hyperparameter_changes"
# A metric's group is its run, relative to the session's: eval's folder in the run's.
METRICS = (
    hp.Metric("precision @ 1", group=layout.EVAL_FOLDER, display_name="precision @ 1 (eval)",
              dataset_type=hp.Metric.VALIDATION),
    hp.Metric("cross_entropy", group=layout.EVAL_FOLDER, display_name="cross entropy (eval)",
              dataset_type=hp.Metric.VALIDATION),
    hp.Metric("total_loss", group="", display_name="total loss (train)",
              dataset_type=hp.Metric.TRAINING),
    # Written by the trainer at each start (app/train/starts.py): not 0 marks a row whose values
    # above changed during the run (the plugin shows the values of its first start).
    hp.Metric(CHANGES_TAG, group="", display_name="hyperparameter changes (resumes)",
              dataset_type=hp.Metric.TRAINING),
)


def hyperparameters(config) -> dict:
    """What decides what the run learns, named as in --set (train.batch_size): every key the
    schema says is learned, the run's length and where it started from (schema.at_resume), so
    that a new one shows up without a change here, where it has a say (of the recipes' sections
    only the run's own: tutorial.initial_learning_rate, fast.width); and how eval measures it.
    Unset values (a null seed) are left out: the plugin takes no None."""
    values = {f"{section}.{key}": value
              for section, key, value, kind in schema.with_a_say_at_resume(config)
              if kind in schema.HYPERPARAMETER_KINDS}
    values["eval.num_examples"] = config.eval.num_examples
    values["eval.use_moving_averages"] = config.eval.use_moving_averages
    return {name: value for name, value in values.items() if value is not None}


def write_hyperparameter_changes(step: int, changes: int) -> None:
    """How many hyperparameter values the run's resumes changed so far: its row's mark."""
    tf.summary.scalar(CHANGES_TAG, changes, step=step)


def write_hparams(config, step: int) -> None:
    """Writes the experiment's layout and this run's values to the default summary writer, at
    `step` (hp.hparams itself would write them at step 0 at every start).

    Every run writes the same layout (the plugin takes the first it finds), listing no domains:
    runs under one parent folder may each use values the others never saw."""
    values = hyperparameters(config)
    layout = hp.hparams_config_pb(hparams=[hp.HParam(name) for name in values],
                                  metrics=list(METRICS))
    for summary in (layout, hp.hparams_pb(values)):
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
