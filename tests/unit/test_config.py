"""The configuration: layers, types, and errors that name the file, the line and the key."""
import os
import stat
import subprocess
import sys
import tempfile

import pytest
import yaml

from app import config
from app.config import ConfigError, defaults
from app.exit_codes import ExitCode
from tests.harness.environment import REPO_ROOT, app_environment, run_app


def load(tmp_path, text=None, overrides=(), environ=None):
    config_file = None
    if text is not None:
        config_file = tmp_path / "config.yaml"
        config_file.write_text(text)
    return config.load(str(config_file) if config_file else None, list(overrides), environ or {})


def test_defaults_document_every_key():
    defaults = yaml.safe_load(config.DEFAULTS_FILE.read_text())
    resolved = config.load(None, [], {}).as_dict()
    # The run's length is the recipe's own, resolved at load: the tutorial's.
    assert defaults["train"]["max_steps"] == defaults["train"]["batch_size"] == "auto"
    assert (resolved["train"]["max_steps"], resolved["train"]["batch_size"]) == (100_000, 128)
    resolved["train"].update(max_steps="auto", batch_size="auto")
    assert defaults == resolved
    text = config.DEFAULTS_FILE.read_text()
    for section, keys in defaults.items():
        for key in keys:  # each key has a comment right above it or in its section's block
            assert f"  {key}:" in text


def test_the_committed_defaults_are_what_the_schema_renders():
    # The schema is written once, in app/config/schema.py: after a change there, run
    # `python -m app.config.defaults` (or `make defaults`) to render defaults.yaml again.
    assert config.DEFAULTS_FILE.read_text(encoding="utf-8") == defaults.render()


def test_layers_apply_in_order_file_then_environment_then_set(tmp_path):
    resolved = load(tmp_path, "train:\n  max_steps: 10\n  batch_size: 16\n",
                    overrides=["train.max_steps=30"],
                    environ={"CIFAR10_TRAIN_MAX_STEPS": "20", "CIFAR10_TRAIN_BATCH_SIZE": "32",
                             "CIFAR10_DATA_SOURCE": "synthetic"})
    assert resolved.train.max_steps == 30
    assert resolved.train.batch_size == 32
    assert resolved.data.source == "synthetic"
    assert resolved.runtime.log_every_secs == 15.0  # untouched defaults stay


def test_config_file_from_environment_variable(tmp_path):
    user_file = tmp_path / "mine.yaml"
    user_file.write_text("eval:\n  every_secs: 7\n")
    resolved = config.load(None, [], {"CIFAR10_CONFIG": str(user_file)})
    assert resolved.eval.every_secs == 7.0


def test_values_from_text_are_read_as_yaml(tmp_path):
    resolved = load(tmp_path, overrides=["eval.use_moving_averages=false",
                                         "tutorial.initial_learning_rate=0.05", "train.seed=3"])
    assert resolved.eval.use_moving_averages is False
    assert resolved.tutorial.initial_learning_rate == 0.05
    assert resolved.train.seed == 3


def test_config_is_frozen(tmp_path):
    resolved = load(tmp_path)
    with pytest.raises(AttributeError):
        resolved.train.max_steps = 5


@pytest.mark.parametrize("text, expected_message", [
    ("train:\n  max_step: 10\n", "config.yaml: line 2: unknown key 'train.max_step' "
                                 "(did you mean 'train.max_steps'?)"),
    ("trian:\n  max_steps: 10\n", "line 1: unknown section 'trian' (did you mean 'train'?)"),
    ("train:\n  batch_size: 0\n",
     "line 2: train.batch_size: expected a whole number >= 1 or auto, got 0"),
    ("train:\n  batch_size: -4\n",
     "train.batch_size: expected a whole number >= 1 or auto, got -4"),
    ("train:\n  batch_size: 12.5\n", "train.batch_size: expected a whole number or auto, got 12.5"),
    ("train:\n  batch_size: '128'\n",
     "train.batch_size: expected a whole number or auto, got '128'"),
    ("train:\n  max_steps: true\n", "train.max_steps: expected a whole number or auto, got True"),
    ("eval:\n  use_moving_averages: 'False'\n",
     "eval.use_moving_averages: expected true or false (unquoted), got 'False'"),
    ("eval:\n  use_moving_averages: 1\n", "eval.use_moving_averages: expected true or false"),
    ("data:\n  source: imagenet\n", "data.source: expected one of cifar10, synthetic"),
    ("tensorboard:\n  port: 70000\n", "tensorboard.port: expected a whole number <= 65535"),
    ("train:\n  moving_average_decay: 1.5\n", "train.moving_average_decay: expected a number <= 1"),
    ("paths:\n  train_dir: ''\n", "paths.train_dir: expected a non-empty text"),
    ("paths:\n  train_dir:\n", "paths.train_dir: expected a value"),
    ("train: 5\n", "line 1: section 'train' must be a mapping of keys"),
    ("- train\n- eval\n", "line 1: expected a mapping of sections"),
    ("train:\n  max_steps: [1, 2\n", "line 3, column 1: invalid YAML"),
    ("train:\n max_steps: 1\n  batch_size: 2\n", "invalid YAML"),
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
])
def test_bad_file_is_refused_with_file_line_and_key(tmp_path, text, expected_message):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert expected_message in str(error.value)
    assert str(tmp_path / "config.yaml") in str(error.value)


@pytest.mark.parametrize("layer", [
    {"text": "eval:\n  every_secs: 0\n"}, {"overrides": ["eval.every_secs=-5"]},
    {"environ": {"CIFAR10_EVAL_EVERY_SECS": "0"}}, {"text": "eval:\n  interval_secs: 0\n"}])
def test_eval_every_secs_of_0_no_pause_before_is_refused_saying_what_to_give(tmp_path, layer):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **layer)
    message = str(error.value)
    assert "eval.every_secs: expected a number > 0" in message
    assert "0 used to mean no pause, which now makes no sense" in message
    assert "eval looks every 0.5 s by itself" in message and "e.g. 300 (the default)" in message


def test_binary_junk_is_refused(tmp_path):
    junk = tmp_path / "config.yaml"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="config.yaml: (not a text file|.*invalid YAML)"):
        config.load(str(junk), [], {})


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        config.load(str(tmp_path / "nope.yaml"), [], {})
    with pytest.raises(ConfigError, match="is a directory"):
        config.load(str(tmp_path), [], {})


@pytest.mark.parametrize("override, expected_message", [
    ("train.max_steps", "--set train.max_steps: expected --set section.key=value"),
    ("max_steps=5", "expected --set section.key=value"),
    ("train.max_steps=abc", "--set train.max_steps=abc: train.max_steps: expected a whole number"),
    ("train.nope=1", "--set train.nope=1: unknown key 'train.nope'"),
])
def test_bad_set_override_names_itself(tmp_path, override, expected_message):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, overrides=[override])
    assert expected_message in str(error.value)


def test_bad_environment_override_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, environ={"CIFAR10_TRAIN_BATCH_SIZE": "many"})
    assert "environment variable CIFAR10_TRAIN_BATCH_SIZE: train.batch_size" in str(error.value)
    with pytest.raises(ConfigError, match="CIFAR10_TRAIN_BATCHSIZE: unknown key 'train.batchsize'"):
        load(tmp_path, environ={"CIFAR10_TRAIN_BATCHSIZE": "5"})


def test_path_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    resolved = load(tmp_path, overrides=[f"paths.train_dir={a_file}/train"])
    with pytest.raises(ConfigError, match=f"paths.train_dir: {a_file} is a file"):
        config.check_paths(resolved)


def test_unwritable_directory_is_refused():
    # Root may write anywhere, so as root the check runs as the unprivileged user 'nobody'.
    locked = tempfile.mkdtemp(prefix="cifar10-locked-")
    try:
        os.chmod(locked, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        command = ["check-config", "--set", f"paths.train_dir={locked}/train"]
        if os.geteuid() == 0:
            result = subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 sys.executable, "-m", "app", *command],
                cwd=REPO_ROOT, env=app_environment(), capture_output=True, text=True, timeout=60)
        else:
            os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
            result = run_app(*command)
        assert result.returncode == ExitCode.BAD_INPUT, result.stderr
        assert f"paths.train_dir: {locked} is not writable by uid" in result.stderr
        assert not os.path.exists(f"{locked}/train")
    finally:
        os.chmod(locked, stat.S_IRWXU)
        os.rmdir(locked)


def test_check_config_prints_the_resolved_config(tmp_path):
    result = run_app("check-config", "--set", f"paths.train_dir={tmp_path}/train",
                     "--set", "train.max_steps=123", CIFAR10_EVAL_EVERY_SECS="9")
    assert result.returncode == ExitCode.DONE, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["train"]["max_steps"] == 123
    assert resolved["eval"]["every_secs"] == 9.0


@pytest.mark.parametrize("text, overrides, max_steps, batch_size", [
    (None, [], 100_000, 128),  # the tutorial's cifar10_train.py
    ("train:\n  recipe: fast\n", [], 977, 512),  # 10 epochs of CIFAR-10's 50,000 at 512
    ("train:\n  recipe: fast\n", ["train.batch_size=256"], 1954, 256),  # still 10 epochs
    ("train:\n  recipe: fast\n", ["fast.epochs=2", "data.source=synthetic"], 40, 512),
    ("train:\n  recipe: fast\n  max_steps: 300\n", [], 300, 512),  # a number set wins
])
def test_a_recipe_brings_its_own_run_length_and_batch(tmp_path, text, overrides, max_steps,
                                                      batch_size):
    resolved = load(tmp_path, text, overrides)
    assert (resolved.train.max_steps, resolved.train.batch_size) == (max_steps, batch_size)


def test_each_sweep_run_gets_its_own_recipe_s_run_length(tmp_path):
    resolved = load(tmp_path, "sweep:\n"
                              "  - run: tutorial\n    set: {tutorial.weight_decay: 0.001}\n"
                              "  - run: fast\n    set: {train.recipe: fast}\n")
    lengths = [(entry.config.train.max_steps, entry.config.train.batch_size)
               for entry in resolved.sweep]
    assert lengths == [(100_000, 128), (977, 512)]


def test_check_config_says_what_the_run_s_length_came_to_and_from_where(tmp_path):
    config_file = tmp_path / "mine.yaml"
    config_file.write_text("train:\n  recipe: fast\n  batch_size: 256\n")
    result = run_app("check-config", "--config", str(config_file),
                     "--set", f"paths.train_dir={tmp_path}/train")
    assert result.returncode == ExitCode.DONE, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "# train.max_steps: 1954 (auto: fast.epochs 10 x 50,000 training images / batch 256)",
        f"# train.batch_size: 256 (set in {config_file}: line 3)"]
    assert yaml.safe_load(result.stdout)["train"]["max_steps"] == 1954


def test_check_config_exits_2_with_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_steps: 100\n  batchsize: 32\n")
    train_dir = tmp_path / "train"
    result = run_app("check-config", "--config", str(bad), "--set", f"paths.train_dir={train_dir}")
    assert result.returncode == ExitCode.BAD_INPUT
    assert result.stderr.strip().splitlines() == [
        f"config error: {bad}: line 3: unknown key 'train.batchsize' "
        "(did you mean 'train.batch_size'?)"]
    assert not train_dir.exists()


def test_a_key_with_a_dot_in_it_is_an_unknown_key_not_a_crash(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, overrides=["train.max.steps=1"])
    assert str(error.value) == ("--set train.max.steps=1: unknown key 'train.max.steps' "
                                "(did you mean 'train.max_steps'?)")


def test_train_refuses_a_bad_config_before_writing_anything(tmp_path):
    train_dir = tmp_path / "train"
    result = run_app("train", "--set", f"paths.train_dir={train_dir}",
                     "--set", "train.batch_size=0", timeout=60)
    assert result.returncode == ExitCode.BAD_INPUT
    assert "train.batch_size: expected a whole number >= 1 or auto, got 0" in result.stderr
    assert not train_dir.exists()


RENAMED = [
    # (how the old name is given, the new key, its value, what the warning tells to write)
    ("file", "train.model", "resnet", "train.recipe", "fast", "'recipe: fast' under 'train:'"),
    ("file", "train.initial_learning_rate", 0.05, "tutorial.initial_learning_rate", 0.05,
     "'initial_learning_rate: 0.05' under 'tutorial:'"),
    ("environment", "resnet.width", 8, "fast.width", 8, "CIFAR10_FAST_WIDTH=8"),
    ("--set", "train.model", "cnn", "train.recipe", "tutorial", "--set train.recipe=tutorial"),
    ("--set", "train.weight_decay", 0.001, "tutorial.weight_decay", 0.001,
     "--set tutorial.weight_decay=0.001"),
    ("environment", "train.checkpoint_every_steps", 50, "runtime.checkpoint_every_steps", 50,
     "CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS=50"),
    ("--set", "train.strategy", "mirrored", "runtime.strategy", "mirrored",
     "--set runtime.strategy=mirrored"),
    ("file", "eval.export_best", "false", "export.best", False, "'best: false' under 'export:'"),
    ("--set", "eval.projector_examples", 100, "projector.examples", 100,
     "--set projector.examples=100"),
    ("environment", "eval.interval_secs", 20, "eval.every_secs", 20.0,
     "CIFAR10_EVAL_EVERY_SECS=20"),
    ("file", "tensorboard.reload_interval_secs", 3, "tensorboard.reload_every_secs", 3.0,
     "'reload_every_secs: 3' under 'tensorboard:'"),
]


@pytest.mark.parametrize("given, old, value, new, new_value, advice", RENAMED,
                         ids=[f"{case[1]} by {case[0]}" for case in RENAMED])
def test_a_renamed_key_still_works_for_a_release_with_one_line_saying_its_new_name(
        tmp_path, caplog, given, old, value, new, new_value, advice):
    section, key = old.split(".")
    if given == "file":
        resolved = load(tmp_path, f"{section}:\n  {key}: {value}\n")
    elif given == "environment":
        resolved = load(tmp_path, environ={f"CIFAR10_{section.upper()}_{key.upper()}": str(value)})
    else:
        resolved = load(tmp_path, overrides=[f"{old}={value}"])
    new_section, new_key = new.split(".")
    assert getattr(getattr(resolved, new_section), new_key) == new_value
    [warning] = [record.getMessage() for record in caplog.records]
    assert f"'{old}' is now called '{new}' (write {advice}); the old name still works" in warning


def test_the_machine_s_settings_are_apart_from_the_hyperparameters(tmp_path):
    resolved = load(tmp_path)
    assert not {"device", "strategy", "threads", "xla", "checkpoint_every_steps"} & set(
        resolved.as_dict()["train"])
    assert resolved.runtime.strategy == "auto"
    assert (resolved.projector.examples, resolved.export.keep) == (1000, 3)


OLD_ZEROS = [
    # (the old 0 as given, the key it sets, the one warning line)
    ("runtime.threads=0", "runtime.threads", "--set runtime.threads=0: 'runtime.threads: 0' is "
     "now written 'runtime.threads: auto' (write --set runtime.threads=auto); 0 still means auto "
     "in this release only"),
    ("eval.threads=0", "eval.threads", "'eval.threads: 0' is now written 'eval.threads: auto' "
     "(write --set eval.threads=auto)"),
    ("train.steps_per_call=0", "runtime.steps_per_call", "'train.steps_per_call' is now called "
     "'runtime.steps_per_call', and its 0 is written auto (write --set "
     "runtime.steps_per_call=auto); the old name still works in this release only"),
]


@pytest.mark.parametrize("override, key, expected_warning", OLD_ZEROS,
                         ids=[case[0] for case in OLD_ZEROS])
def test_an_old_zero_that_meant_auto_is_read_as_auto_with_one_line_saying_so(
        tmp_path, caplog, override, key, expected_warning):
    section, name = key.split(".")
    assert getattr(getattr(load(tmp_path, overrides=[override]), section), name) == "auto"
    [warning] = [record.getMessage() for record in caplog.records]
    assert expected_warning in warning


BAD_CADENCES = [
    # (the --set, what the error says)
    ("runtime.log_every_secs=0", "runtime.log_every_secs: expected a number > 0.0, got 0.0"),
    ("runtime.summary_every_steps=-5",
     "runtime.summary_every_steps: expected a whole number > 0, got -5"),
    ("runtime.summary_max_share=often",
     "runtime.summary_max_share: expected a number, got 'often'"),
    ("runtime.checkpoint_min_gap_secs=-1",
     "runtime.checkpoint_min_gap_secs: expected a number > 0.0, got -1.0"),
    ("runtime.log_every_steps=0", "runtime.log_every_steps: expected a whole number > 0, got 0"),
]


@pytest.mark.parametrize("override, error", BAD_CADENCES, ids=[case[0] for case in BAD_CADENCES])
def test_a_cadence_that_is_zero_negative_or_no_number_exits_2_naming_the_key(
        tmp_path, override, error):
    train_dir = tmp_path / "train"
    result = run_app("check-config", "--set", f"paths.train_dir={train_dir}", "--set", override,
                     timeout=60)
    assert result.returncode == ExitCode.BAD_INPUT
    assert f"config error: --set {override}: {error}" in result.stderr
    assert not train_dir.exists()


def test_the_default_cadences_hold_at_any_pace_and_say_nothing(tmp_path, caplog):
    runtime = load(tmp_path).runtime
    assert (runtime.log_every_secs, runtime.log_every_steps) == (15.0, None)
    assert (runtime.summary_every_steps, runtime.summary_max_share) == (100, 0.02)
    assert (runtime.checkpoint_every_steps, runtime.checkpoint_every_secs,
            runtime.checkpoint_min_gap_secs) == (1000, 600.0, 5.0)
    assert not caplog.records


def test_a_checkpoint_trigger_is_off_as_null_and_an_old_0_still_turns_it_off_saying_so(
        tmp_path, caplog):
    assert load(tmp_path, overrides=["runtime.checkpoint_every_secs=null"]
                ).runtime.checkpoint_every_secs is None
    assert not caplog.records
    resolved = load(tmp_path, "runtime:\n  checkpoint_every_steps: 0\n")
    assert resolved.runtime.checkpoint_every_steps is None
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.endswith("'runtime.checkpoint_every_steps: 0' is now written "
                            "'runtime.checkpoint_every_steps: null' (write "
                            "'checkpoint_every_steps: null' under 'runtime:'); 0 still means off "
                            "in this release only")


def test_log_every_steps_still_prints_by_steps_with_one_line_saying_log_every_secs_is_the_way(
        tmp_path):
    result = run_app("check-config", "--set", f"paths.train_dir={tmp_path / 'train'}",
                     "--set", "train.log_every_steps=50", timeout=60)
    assert result.returncode == ExitCode.DONE, result.stderr
    assert yaml.safe_load(result.stdout)["runtime"]["log_every_steps"] == 50
    [warning] = [line for line in result.stderr.splitlines() if "log_every_steps" in line]
    assert "'train.log_every_steps' is now called 'runtime.log_every_steps'" in warning
    assert ("'runtime.log_every_steps' still works with a new meaning: progress lines are "
            "printed every runtime.log_every_secs now, not every 10 steps: set that instead"
            ) in warning


def test_auto_is_a_word_of_its_own_and_no_number_means_it(tmp_path):
    resolved = load(tmp_path)
    assert (resolved.runtime.threads, resolved.runtime.steps_per_call) == ("auto", "auto")
    assert load(tmp_path, overrides=["runtime.threads=4"]).runtime.threads == 4
    with pytest.raises(ConfigError, match="runtime.threads: expected a whole number >= 1 or auto, "
                                          "got -1"):
        load(tmp_path, overrides=["runtime.threads=-1"])
    with pytest.raises(ConfigError, match="runtime.steps_per_call: expected a whole number or "
                                          "auto, got 'many'"):
        load(tmp_path, overrides=["runtime.steps_per_call=many"])


def test_a_key_given_under_its_old_and_new_name_at_once_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="'train.recipe' is set twice"):
        load(tmp_path, "train:\n  model: cnn\n  recipe: fast\n")


def test_a_sweep_run_is_found_by_its_name_or_refused_naming_the_sweep_s_runs(tmp_path):
    resolved = load(tmp_path, "sweep:\n"
                              "  - run: lr-0.05\n    set: {tutorial.initial_learning_rate: 0.05}\n"
                              "  - run: lr-0.2\n    set: {tutorial.initial_learning_rate: 0.2}\n")
    found = config.find_sweep_run(resolved.sweep, "lr-0.2")
    assert found.config.tutorial.initial_learning_rate == 0.2
    with pytest.raises(ConfigError, match=r"--sweep-run lr-1: the config's sweep has no run "
                                          r"'lr-1' \(it has lr-0.05, lr-0.2\)"):
        config.find_sweep_run(resolved.sweep, "lr-1")


def test_deterministic_training_without_a_seed_is_refused_naming_both_keys():
    with pytest.raises(ConfigError, match=r"--set train.deterministic=true: train.deterministic: "
                                          r"true needs train.seed"):
        config.load(None, ["train.deterministic=true"], {})
    assert config.load(None, ["train.deterministic=true", "train.seed=7"], {}).train.seed == 7
