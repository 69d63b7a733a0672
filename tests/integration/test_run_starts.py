"""A run's starts through the command line a user runs: a resume that would change what is learned
is refused and writes nothing, one that may goes on and says so (the log, starts.jsonl, the Text
tab, the HParams row), and a run starts from another run's checkpoint, alone or in a sweep,
leaving that run as it was."""
import json
import shutil

import pytest
import tensorflow as tf
import yaml
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata

from app.exit_codes import ExitCode
from tests.harness import log_lines
from tests.harness.environment import run_app, settings

pytestmark = pytest.mark.slow

SMALL = {  # settings() adds the folders and the synthetic set
    "data.synthetic_train_examples": 256, "data.synthetic_test_examples": 64,
    "eval.num_examples": 64, "train.batch_size": 16, "train.max_steps": 40, "train.seed": 3,
    "runtime.checkpoint_every_steps": 20, "runtime.checkpoint_min_gap_secs": "null",
}


def train(root, **changes):
    return run_app("train", *settings(root, SMALL, **changes))


def trained(root, **changes):
    done = train(root, **changes)
    assert done.returncode == ExitCode.DONE, done.stdout + done.stderr
    return done.stdout + done.stderr


def app_lines(output: str) -> list[str]:
    """The appliance's own lines (TensorFlow's C++ logging starts with a letter and a date)."""
    return [line for line in output.splitlines()
            if not line[:1] in "IWE" or not line[1:5].isdigit()]


def snapshot(folder) -> dict:
    """Every file below `folder` with its size and modification time."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def events(run_folder) -> event_accumulator.EventAccumulator:
    accumulator = event_accumulator.EventAccumulator(
        str(run_folder), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return accumulator


def values(run_folder, tag: str) -> dict[int, object]:
    return {event.step: tf.make_ndarray(event.tensor_proto)
            for event in events(run_folder).Tensors(tag)}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 40-step run, `first`, with checkpoints at 20 and 40: what the tests resume or start
    from."""
    root = tmp_path_factory.mktemp("starts")
    trained(root, **{"paths.run": "first"})
    return root


def test_a_resume_that_changes_the_learning_rate_is_refused_and_writes_nothing(source):
    before = snapshot(source / "train")
    refused = train(source, **{"paths.run": "first", "train.max_steps": 60,
                               "tutorial.initial_learning_rate": 0.05})
    assert refused.returncode == ExitCode.BAD_INPUT
    errors = [line for line in app_lines(refused.stdout + refused.stderr)
              if line.startswith("error:")]
    assert len(errors) == 1
    said = log_lines.LEARNED_CHANGE_REFUSED.match(errors[0])
    assert (said["run"], said["changes"]) == ("first",
                                                    "tutorial.initial_learning_rate 0.1 -> 0.05")
    assert snapshot(source / "train") == before


def test_allowed_changes_go_on_recorded_in_starts_the_text_tab_and_the_hparams_row(source):
    shutil.copytree(source / "train" / "first", source / "train" / "changed",
                    ignore=shutil.ignore_patterns(".trainer.lock"))
    output = trained(source, **{"paths.run": "changed", "train.max_steps": 60,
                                "tutorial.initial_learning_rate": 0.05,
                                "train.allow_changes": "true", "runtime.threads": 1})
    lines = app_lines(output)
    assert ("resuming with changed hyperparameters, as train.allow_changes lets it: "
            "tutorial.initial_learning_rate 0.1 -> 0.05") in "\n".join(lines)
    assert ("resuming with other settings of how it runs (what it learns is unchanged): "
            "runtime.threads auto -> 1") in lines
    run_folder = source / "train" / "changed"
    recorded = [json.loads(line) for line in (run_folder / "starts.jsonl").read_text().splitlines()]
    assert [start["step"] for start in recorded] == [0, 40]
    assert recorded[-1]["changed"]["tutorial.initial_learning_rate"] == {
        "old": 0.1, "new": 0.05, "kind": "learned"}
    text = values(run_folder, "starts")[40].flatten()[0].decode()
    assert "tutorial.initial_learning_rate 0.1 -> 0.05 (learned)" in text
    assert {step: float(value) for step, value in
            values(run_folder, "hyperparameter_changes").items()} == {0: 0.0, 40: 1.0}
    assert yaml.safe_load((run_folder / "run.yaml").read_text())["tutorial"][
        "initial_learning_rate"] == 0.05


def test_a_run_started_from_another_continues_at_its_step_and_leaves_it_as_it_was(source):
    before = snapshot(source / "train" / "first")
    output = trained(source, **{"paths.run": "second", "train.init_from": "first@30",
                                "train.max_steps": 60})
    first_line = next(line for line in app_lines(output) if "training run" in line)
    assert "training run 'second' from run 'first' at model.ckpt-20 (continue" in first_line
    run_folder = source / "train" / "second"
    assert min(values(run_folder, "total_loss (raw)")) == 20  # its curves start where it did
    assert json.loads((run_folder / "starts.jsonl").read_text())["from"] == (
        "first/model.ckpt-20 (continue)")
    session = metadata.parse_session_start_info_plugin_data(
        events(run_folder).SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content)
    assert session.hparams["train.init_from"].string_value == "first@30"
    assert snapshot(source / "train" / "first") == before


def test_fine_tuning_takes_the_weights_and_starts_at_step_0(source):
    trained(source, **{"paths.run": "tuned", "train.init_from": "first",
                       "train.init_mode": "fine_tune", "train.max_steps": 10})
    tuned = values(source / "train" / "tuned", "total_loss (raw)")
    fresh = values(source / "train" / "first", "total_loss (raw)")
    assert min(tuned) == 0
    assert float(tuned[0]) < float(fresh[0]) - 0.1  # trained weights, not new ones


def test_init_from_a_run_that_is_not_there_exits_2_in_one_line_writing_nothing(source):
    refused = train(source, **{"paths.run": "third", "train.init_from": "frist"})
    assert refused.returncode == ExitCode.BAD_INPUT
    errors = [line for line in app_lines(refused.stdout + refused.stderr)
              if line.startswith("error:")]
    assert errors == [f"error: train.init_from: frist: no run 'frist' with checkpoints in "
                      f"{source / 'train'} (runs with checkpoints there: "
                      + errors[0].rsplit("there: ", 1)[1]]
    assert "first" in errors[0].rsplit("there: ", 1)[1]
    assert not (source / "train" / "third").exists()


def test_a_sweep_entry_starts_from_the_run_before_it(tmp_path):
    config_file = tmp_path / "sweep.yaml"
    config_file.write_text(yaml.safe_dump({"sweep": [
        {"run": "base", "set": {"train.max_steps": 20}},
        {"run": "lower", "set": {"train.init_from": "base", "train.max_steps": 30,
                                 "tutorial.initial_learning_rate": 0.05}},
    ]}))
    done = run_app("train", "--config", str(config_file), *settings(tmp_path, SMALL))
    assert done.returncode == ExitCode.DONE, done.stdout + done.stderr
    lower = tmp_path / "train" / "lower"
    assert json.loads((lower / "starts.jsonl").read_text())["from"] == (
        "base/model.ckpt-20 (continue)")
    assert sorted(values(lower, "total_loss (raw)"))[0] == 20
