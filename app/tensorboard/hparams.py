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

(TensorBoard's hparams plugin finds no metrics for a session at the logdir's root, run "."; a
run in a folder of its own gets them: one reason runs are folders of the volume.)
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from app.volume import layout

# A metric's group is its run, relative to the session's: eval's folder in the run's.
METRICS = (
    hp.Metric("precision @ 1", group=layout.EVAL_FOLDER, display_name="precision @ 1 (eval)",
              dataset_type=hp.Metric.VALIDATION),
    hp.Metric("cross_entropy", group=layout.EVAL_FOLDER, display_name="cross entropy (eval)",
              dataset_type=hp.Metric.VALIDATION),
    hp.Metric("total_loss", group="", display_name="total loss (train)",
              dataset_type=hp.Metric.TRAINING),
)


def hyperparameters(config) -> dict:
    """What decides what the run learns, named as in --set (train.batch_size): every train key,
    so that a new one shows up without a change here (how the machine runs it is runtime's); the
    recipe's own section (tutorial.initial_learning_rate, fast.width); the data it learns from,
    and how eval measures it. Unset values (a null seed) are left out: the plugin takes no None."""
    values = {f"train.{key}": value for key, value in dataclasses.asdict(config.train).items()}
    recipe = config.train.recipe  # each recipe's hyperparameters are the section of its name
    values.update({f"{recipe}.{key}": value
                   for key, value in dataclasses.asdict(getattr(config, recipe)).items()})
    values["data.source"] = config.data.source
    if config.data.source == "synthetic":
        values["data.synthetic_train_examples"] = config.data.synthetic_train_examples
        values["data.synthetic_seed"] = config.data.synthetic_seed
    values["eval.num_examples"] = config.eval.num_examples
    values["eval.use_moving_averages"] = config.eval.use_moving_averages
    return {name: value for name, value in values.items() if value is not None}


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
