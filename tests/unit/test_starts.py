"""What a start of the trainer makes of a run's folder, read from files as the trainer leaves them
(the `checkpoint` state file, run.yaml): which resumes are refused and why, which go on, and which
checkpoint train.init_from names. No training: the files are written by hand."""
import pytest
import yaml

from app import config as configuration
from app.config import schema
from app.train import starts


def make_run(train_dir, name: str, steps: list[int], **record_changes) -> None:
    """A run's folder as a trainer leaves it: checkpoints at `steps` listed in the state file,
    and the record of a start whose config had `record_changes` (section.key: value)."""
    folder = train_dir / name
    folder.mkdir(parents=True)
    listed = "".join(f'all_model_checkpoint_paths: "model.ckpt-{step}"\n' for step in steps)
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "model.ckpt-{steps[-1]}"\n'
                                       + listed)
    for step in steps:
        (folder / f"model.ckpt-{step}.index").write_bytes(b"")
    recorded = load(train_dir, name, **record_changes)
    (folder / "run.yaml").write_text(recorded.to_yaml())


def load(train_dir, run: str, **changes) -> configuration.Config:
    overrides = {"paths.train_dir": train_dir, "paths.run": run, "data.source": "synthetic",
                 **changes}
    return configuration.load(None, [f"{key}={value}" for key, value in overrides.items()], {})


def test_a_resume_that_changes_what_is_learned_is_refused_naming_old_and_new_values(tmp_path):
    make_run(tmp_path, "base", [100, 200])
    changed = load(tmp_path, "base", **{"tutorial.initial_learning_rate": 0.05,
                                         "train.batch_size": 64})
    with pytest.raises(starts.StartRefused) as refused:
        starts.check(changed)
    message = str(refused.value)
    assert message.startswith("run 'base' was trained with other values of what it learns: "
                              "train.batch_size 128 -> 64, tutorial.initial_learning_rate "
                              "0.1 -> 0.05 (its record: ")
    assert "model.ckpt-200" in message and "train.init_from=base" in message
    assert "train.allow_changes=true" in message and "\n" not in message


def test_allowed_changes_machine_settings_and_the_run_length_go_on_each_said_for_what_it_is(
        tmp_path):
    make_run(tmp_path, "base", [100])
    start = starts.check(load(tmp_path, "base", **{
        "tutorial.weight_decay": 0.001, "train.allow_changes": "true", "runtime.threads": 1,
        "train.max_steps": 5000, "train.init_from": "elsewhere"}))
    kinds = {change.key: change.kind for change in start.changes}
    assert kinds == {"tutorial.weight_decay": schema.LEARNED, "runtime.threads": schema.MACHINE,
                     "train.max_steps": schema.RUN_LENGTH, "train.init_from": schema.FIRST_START}
    lines = starts.resume_lines(start)
    assert any(line.startswith("resuming with changed hyperparameters, as train.allow_changes "
                               "lets it: tutorial.weight_decay 0.004 -> 0.001") for line in lines)
    assert "resuming with other settings of how it runs (what it learns is unchanged): " \
           "runtime.threads auto -> 1" in lines
    assert "resuming with another run length: train.max_steps 100000 -> 5000" in lines


def test_where_the_schedule_spans_the_run_another_max_steps_is_another_experiment(tmp_path):
    make_run(tmp_path, "fast", [10], **{"train.recipe": "fast", "train.max_steps": 100})
    with pytest.raises(starts.StartRefused, match="train.max_steps 100 -> 200"):
        starts.check(load(tmp_path, "fast", **{"train.recipe": "fast", "train.max_steps": 200}))


def test_keys_without_a_say_and_keys_an_older_record_lacks_are_not_compared(tmp_path):
    make_run(tmp_path, "base", [100])
    record = tmp_path / "base" / "run.yaml"
    written = yaml.safe_load(record.read_text())
    del written["train"]["moving_average_decay"]  # a record of a version without the key
    record.write_text(yaml.safe_dump(written))
    start = starts.check(load(tmp_path, "base", **{
        "fast.width": 8,  # another recipe's section
        "train.moving_average_decay": 0.99, "eval.num_examples": 100, "export.keep": 1}))
    assert start.changes == () and start.resumes_from.name == "model.ckpt-100"


def test_a_run_recorded_before_the_gradient_clip_existed_trained_unclipped(tmp_path):
    make_run(tmp_path, "old", [100])
    record = tmp_path / "old" / "run.yaml"
    written = yaml.safe_load(record.read_text())
    del written["tutorial"]["gradient_clip_norm"]  # recorded by a version without the clip
    record.write_text(yaml.safe_dump(written))
    with pytest.raises(starts.StartRefused, match=r"tutorial.gradient_clip_norm null -> 10.0 "):
        starts.check(load(tmp_path, "old"))
    assert starts.check(load(tmp_path, "old", **{"tutorial.gradient_clip_norm": "null"})).changes \
        == ()


def test_init_from_takes_the_newest_checkpoint_at_or_before_its_step(tmp_path):
    make_run(tmp_path, "base", [100, 200, 300])
    assert starts.check(load(tmp_path, "new", **{"train.init_from": "base@250"})
                        ).source.checkpoint.name == "model.ckpt-200"
    source = starts.check(load(tmp_path, "new", **{"train.init_from": "base",
                                                   "train.init_mode": "fine_tune"})).source
    assert (source.run, source.checkpoint.name, source.mode) == ("base", "model.ckpt-300",
                                                                 "fine_tune")


@pytest.mark.parametrize("init_from, extra, message", [
    ("nowhere", {}, "train.init_from: nowhere: no run 'nowhere' with checkpoints in {train_dir} "
                    "(runs with checkpoints there: base)"),
    ("base@301", {}, "train.init_from: base@301: run 'base' has reached only step 300 (its "
                     "newest checkpoint, model.ckpt-300)"),
    ("base@99", {}, "train.init_from: base@99: run 'base' keeps no checkpoint at or before step "
                    "99; its oldest is model.ckpt-100"),
    ("base", {"train.recipe": "fast"}, "train.init_from: base: run 'base' was trained with "
                                       "train.recipe tutorial, this run's is fast"),
    ("new", {}, "train.init_from: new: that is this run itself"),
])
def test_init_from_a_checkpoint_that_is_not_there_is_refused_saying_what_is_missing(
        tmp_path, init_from, extra, message):
    make_run(tmp_path, "base", [100, 200, 300])
    with pytest.raises(starts.StartRefused) as refused:
        starts.check(load(tmp_path, "new", **{"train.init_from": init_from, **extra}))
    assert str(refused.value).startswith(message.format(train_dir=tmp_path))
    assert not (tmp_path / "new").exists()


def test_the_starts_table_and_the_hparams_mark_count_the_learned_changes():
    recorded = [
        {"step": 0, "started_at": "2026-12-04T10:00:00+00:00", "host": "a", "from": None,
         "changed": {}},
        {"step": 300, "started_at": "2026-12-04T11:00:00+00:00", "host": "b",
         "from": "model.ckpt-300", "changed": {
             "tutorial.initial_learning_rate": {"old": 0.1, "new": 0.05, "kind": "learned"},
             "runtime.threads": {"old": "auto", "new": 1, "kind": "machine"}}},
    ]
    assert starts.learned_changes_of(recorded) == 1
    table = starts.as_markdown(recorded).splitlines()
    assert table[2] == "| 1 | 0 | 2026-12-04T10:00:00+00:00 | a | nothing | - |"
    assert table[3] == ("| 2 | 300 | 2026-12-04T11:00:00+00:00 | b | model.ckpt-300 | "
                        "tutorial.initial_learning_rate 0.1 -> 0.05 (learned); "
                        "runtime.threads auto -> 1 (machine) |")
