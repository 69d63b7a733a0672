"""Runs as folders of the volume: their names, the old single-run layout moved into a run, one
trainer per run, and the sweep's entries checked before anything trains."""
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from app import compat, config as configuration
from app.volume import runs
from app.config import ConfigError


@pytest.mark.parametrize("name", ["default", "lr-0.05", "resnet_w8", "A.b-c_9"])
def test_a_run_may_be_named_like_a_folder(name):
    assert runs.name_problem(name) is None


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "..", "with space", "eval",
                                  "export", "x" * 101, "tab\tname", "é"])
def test_a_run_name_that_is_not_a_safe_folder_name_is_refused(name):
    assert runs.name_problem(name)


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", "eval", ".x"])
def test_paths_run_that_is_no_folder_name_is_a_config_error_naming_the_key(name):
    with pytest.raises(ConfigError, match=r"paths\.run: expected a folder name"):
        configuration.load(None, [f"paths.run={name}"], {})


def old_layout(train_dir):
    """What a volume looked like before runs had folders: one run at its root."""
    train_dir.mkdir(parents=True)
    (train_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-20"\n'
                                          'all_model_checkpoint_paths: "model.ckpt-20"\n')
    for name in ("model.ckpt-20.index", "model.ckpt-20.data-00000-of-00001",
                 "events.out.tfevents.1.host.1.0.v2"):
        (train_dir / name).write_text(name)
    (train_dir / "eval").mkdir()
    (train_dir / "eval" / "results.jsonl").write_text('{"step": 20}\n')
    (train_dir / "export" / "best").mkdir(parents=True)
    (train_dir / "someone-elses-notes.txt").write_text("mine")


def test_a_volume_of_the_old_layout_is_moved_into_the_run_and_nothing_is_lost(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    volume = tmp_path / "cifar10_train"
    old_layout(volume)
    before = sorted(path.name for path in volume.iterdir())
    compat.adopt_old_layout(volume, "default")
    run = volume / "default"
    assert sorted(path.name for path in run.iterdir()) == sorted(
        set(before) - {"someone-elses-notes.txt"})
    assert (run / "eval" / "results.jsonl").read_text() == '{"step": 20}\n'
    assert (volume / "someone-elses-notes.txt").read_text() == "mine"  # not ours: left alone
    assert runs.with_checkpoints(volume) == ["default"]
    assert any(f"moved the run at the root of {volume} into {run}" in record.getMessage()
               for record in caplog.records)
    compat.adopt_old_layout(volume, "default")  # a second program after the first: nothing to do
    assert (run / "model.ckpt-20.index").is_file()


def test_the_old_layout_stays_put_when_the_run_has_a_folder_of_its_own(tmp_path, caplog):
    volume = tmp_path / "cifar10_train"
    old_layout(volume)
    (volume / "default").mkdir()
    (volume / "default" / "checkpoint").write_text("theirs")
    compat.adopt_old_layout(volume, "default")
    assert (volume / "checkpoint").is_file() and (volume / "default" / "checkpoint").read_text() \
        == "theirs"
    assert "stays where it is" in caplog.text


def lock_holder(train_dir, run: str) -> subprocess.Popen:
    """Another process that holds the trainer lock of `run`, as a trainer does, until killed."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from app.volume import runs
        lock = runs.hold_trainer_lock(runs.folder({str(train_dir)!r}, {run!r}))
        print("holding", flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_one_trainer_per_run_and_a_kill_9_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "default"
    holder = lock_holder(tmp_path, "default")
    try:
        assert runs.is_training(run)
        with pytest.raises(runs.RunBusy, match=f"run 'default' .* is being trained already, by "
                                               f"pid {holder.pid}"):
            runs.hold_trainer_lock(run)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert not runs.is_training(run)
        assert runs.hold_trainer_lock(run)
    finally:
        holder.kill()
        holder.wait()


def test_any_training_sees_a_trainer_on_any_run_even_one_without_a_checkpoint(tmp_path):
    volume = tmp_path / "cifar10_train"
    assert not runs.any_training(volume)  # no volume yet
    (volume / "done").mkdir(parents=True)
    (volume / "done" / ".trainer.lock").write_text("pid 1 on gone\n")  # left by a trainer that ended
    assert not runs.any_training(volume)
    holder = lock_holder(volume, "starting")
    try:
        assert runs.with_checkpoints(volume) == [] and runs.any_training(volume)
    finally:
        holder.kill()
        holder.wait()
    assert not runs.any_training(volume)


def write(tmp_path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_sweep_lists_runs_each_with_the_whole_config_it_trains_with(tmp_path):
    config = configuration.load(write(tmp_path, """\
        train:
          max_steps: 300
        sweep:
          - run: lr-0.05
            set: {tutorial.initial_learning_rate: 0.05}
          - run: fast-8
            set: {train.recipe: fast, fast.width: 8}
        """), [], {})
    assert [entry.run for entry in config.sweep] == ["lr-0.05", "fast-8"]
    first, second = (entry.config for entry in config.sweep)
    assert first.paths.run == "lr-0.05" and first.tutorial.initial_learning_rate == 0.05
    assert first.train.max_steps == 300  # the file's other keys apply to every run
    assert second.train.recipe == "fast" and second.fast.width == 8
    assert dict(config.sweep[1].changes) == {"train.recipe": "fast", "fast.width": 8}


@pytest.mark.parametrize("sweep, message", [
    ("- run: a\n  set: {train.batch_sise: 3}", "line 3: unknown key 'train.batch_sise'"),
    ("- run: a\n  set: {train.batch_size: 0}", "line 3: train.batch_size: expected a whole number"),
    ("- run: a\n- run: a", "line 3: sweep run 'a' twice"),
    ("- run: ../x", "line 2: sweep run '../x': expected a folder name"),
    ("- run: a/b", "line 2: sweep run 'a/b': expected a folder name"),
    ("- run: a\n  set: {paths.train_dir: /x}", "a sweep run keeps the appliance's paths"),
    ("- run: a\n  sets: {}", "line 3: unknown key 'sets' in a sweep entry"),
    ("- set: {train.batch_size: 3}", "line 2: a sweep entry without 'run:'"),
    ("{run: a}", "'sweep' must be a list of runs"),
], ids=["unknown key", "bad value", "duplicate name", "parent folder", "slash", "a path",
        "misspelt set", "no name", "not a list"])
def test_a_bad_sweep_entry_is_refused_before_anything_trains(tmp_path, sweep, message):
    text = "sweep:\n" + textwrap.indent(sweep, "  ") + "\n"
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        configuration.load(write(tmp_path, text), [], {})


def test_a_sweep_comes_from_a_file_only(tmp_path):
    with pytest.raises(ConfigError, match="a sweep is a list of runs, given in a config file"):
        configuration.load(None, [], {"CIFAR10_SWEEP_RUN": "x"})
