"""The HParams tab's data: which settings count as hyperparameters, and what the plugin reads."""
import dataclasses

import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata

from app import config as configuration
from app.tensorboard import hparams


def test_hyperparameters_are_what_decides_the_learning_named_as_in_set():
    config = configuration.load(None, ["data.source=synthetic", "train.seed=7"], {})
    values = hparams.hyperparameters(config)
    assert values["tutorial.initial_learning_rate"] == config.tutorial.initial_learning_rate
    assert values["train.batch_size"] == config.train.batch_size
    assert values["train.seed"] == 7
    assert values["data.source"] == "synthetic"
    assert values["data.synthetic_train_examples"] == config.data.synthetic_train_examples
    assert values["eval.use_moving_averages"] is True
    for machine_setting in dataclasses.asdict(config.runtime):  # how it runs, not what it learns
        assert f"train.{machine_setting}" not in values
        assert f"runtime.{machine_setting}" not in values


def test_an_unset_seed_is_left_out_and_the_real_data_has_no_synthetic_sizes():
    values = hparams.hyperparameters(configuration.load(None, ["data.source=cifar10"], {}))
    assert "train.seed" not in values
    assert not any(name.startswith("data.synthetic") for name in values)


def test_written_hparams_are_what_the_plugin_reads_at_the_step_the_trainer_starts(tmp_path):
    config = configuration.load(None, ["tutorial.initial_learning_rate=0.05"], {})
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        hparams.write_hparams(config, step=1200)
    accumulator = event_accumulator.EventAccumulator(str(tmp_path))
    accumulator.Reload()
    contents = {tag: accumulator.SummaryMetadata(tag).plugin_data
                for tag in accumulator.Tags()["tensors"]}
    assert {data.plugin_name for data in contents.values()} == {metadata.PLUGIN_NAME}

    experiment = metadata.parse_experiment_plugin_data(
        contents[metadata.EXPERIMENT_TAG].content)
    assert [(m.name.group, m.name.tag) for m in experiment.metric_infos] == [
        ("eval", "precision @ 1"), ("eval", "cross_entropy"), ("", "total_loss"),
        ("", "hyperparameter_changes")]
    session = metadata.parse_session_start_info_plugin_data(
        contents[metadata.SESSION_START_INFO_TAG].content)
    assert session.hparams["tutorial.initial_learning_rate"].number_value == 0.05
    assert session.hparams["train.recipe"].string_value == "tutorial"
    assert sorted(h.name for h in experiment.hparam_infos) == sorted(session.hparams)
    for tag in (metadata.EXPERIMENT_TAG, metadata.SESSION_START_INFO_TAG):
        assert [event.step for event in accumulator.Tensors(tag)] == [1200]
