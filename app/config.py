"""The configuration: YAML in, one typed, validated, frozen object out.

Layers, each over the one before:
  1. the packaged defaults, app/defaults.yaml (every key, documented);
  2. the user's file (--config FILE, or the CIFAR10_CONFIG environment variable): only the keys
     it changes;
  3. environment overrides CIFAR10_<SECTION>_<KEY>=value, e.g. CIFAR10_TRAIN_MAX_STEPS=2000;
  4. command-line overrides --set section.key=value.

Values given as text (layers 3 and 4) are read as YAML scalars, so "2000" is a number and "false"
a boolean. Everything else is strict: an unknown key, a wrong type or a value out of range is a
ConfigError whose message names the source (file and line, variable, or --set) and the key.

A key that was renamed is still read under its old name for a release, with a one-line warning
that names the new one (RENAMED_KEYS).

A file may also list a sweep: runs that the trainer trains one after another, each a name and the
keys it changes (app/sweep.py). Each is checked here like the rest, before anything starts.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

import yaml

from app import runs

DEFAULTS_FILE = Path(__file__).resolve().parent / "defaults.yaml"
CONFIG_FILE_VARIABLE = "CIFAR10_CONFIG"
# What urllib can fetch the data set from (file: a copy on a mounted disk).
URL_SCHEMES = ("http", "https", "ftp", "file")
# The real test set: test_batch.bin holds 10,000 images. (The synthetic one holds what
# data.synthetic_test_examples says.)
CIFAR10_TEST_IMAGES = 10_000
OVERRIDE_PREFIX = "CIFAR10_"

# Old name -> new name, for keys renamed in 0.2 so that each name says what it chooses: the
# recipe (not only the model), and each recipe's own keys in its own section. A section name
# alone renames all of its keys.
RENAMED_KEYS = {
    "train.model": "train.recipe",
    "train.initial_learning_rate": "tutorial.initial_learning_rate",
    "train.learning_rate_decay_factor": "tutorial.learning_rate_decay_factor",
    "train.epochs_per_decay": "tutorial.epochs_per_decay",
    "train.weight_decay": "tutorial.weight_decay",
    "resnet": "fast",
}
# Values an old key took that are named otherwise under the new one.
RENAMED_VALUES = {"train.model": {"cnn": "tutorial", "resnet": "fast"}}

# What to_yaml shows instead of a password.
SECRET_LEFT_OUT = "(set, not shown)"

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration the appliance refuses to start with. str() is the whole message."""


def _field(minimum=None, choices=None, exclusive_minimum=None, maximum=None, url=False,
           folder_name=False):
    return dataclasses.field(metadata=dict(
        minimum=minimum, exclusive_minimum=exclusive_minimum, maximum=maximum, choices=choices,
        url=url, folder_name=folder_name))


@dataclasses.dataclass(frozen=True)
class PathsConfig:
    train_dir: str = _field()
    run: str = _field(folder_name=True)
    data_dir: str = _field()


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = _field(choices=("cifar10", "synthetic"))
    url: str = _field(url=True)
    md5: str = _field()
    download_attempts: int = _field(minimum=1)
    synthetic_train_examples: int = _field(minimum=5)
    synthetic_test_examples: int = _field(minimum=1)
    synthetic_seed: int = _field(minimum=0)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    recipe: str = _field(choices=("tutorial", "fast"))
    max_steps: int = _field(minimum=1)
    batch_size: int = _field(minimum=1)
    moving_average_decay: float = _field(minimum=0.0, maximum=1.0)
    checkpoint_every_steps: int = _field(minimum=0)
    checkpoint_every_secs: float = _field(minimum=0.0)
    keep_checkpoints: int = _field(minimum=1)
    summary_every_steps: int = _field(minimum=1)
    log_every_steps: int = _field(minimum=1)
    steps_per_call: int = _field(minimum=0)
    threads: int = _field(minimum=0)
    seed: int | None = _field(minimum=0)
    device: str = _field(choices=("auto", "gpu", "cpu"))
    strategy: str = _field(choices=("auto", "mirrored", "multi_worker"))
    scale_learning_rate: str = _field(choices=("linear", "none"))
    cpu_devices: int = _field(minimum=1)
    # Words that YAML does not read as booleans (it would read on/off/yes/no so).
    mixed_precision: str = _field(choices=("auto", "float32", "bfloat16"))
    xla: str = _field(choices=("auto", "enabled", "disabled"))


@dataclasses.dataclass(frozen=True)
class TutorialConfig:
    initial_learning_rate: float = _field(exclusive_minimum=0.0)
    learning_rate_decay_factor: float = _field(exclusive_minimum=0.0, maximum=1.0)
    epochs_per_decay: float = _field(exclusive_minimum=0.0)
    weight_decay: float = _field(minimum=0.0)


@dataclasses.dataclass(frozen=True)
class FastConfig:
    width: int = _field(minimum=1)
    peak_learning_rate: float = _field(exclusive_minimum=0.0)
    warmup_fraction: float = _field(exclusive_minimum=0.0, maximum=1.0)
    momentum: float = _field(minimum=0.0, maximum=1.0)
    weight_decay: float = _field(minimum=0.0)
    label_smoothing: float = _field(minimum=0.0, maximum=1.0)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    interval_secs: float = _field(minimum=0.0)
    num_examples: int = _field(minimum=1)
    batch_size: int = _field(minimum=1)
    use_moving_averages: bool = _field()
    device: str = _field(choices=("auto", "gpu", "cpu"))
    threads: int = _field(minimum=0)
    niceness: int = _field(minimum=0, maximum=19)
    gpu_memory_limit_mb: int = _field(minimum=0)
    projector_examples: int = _field(minimum=0, maximum=10000)
    projector_every_evals: int = _field(minimum=1)
    export_best: bool = _field()
    keep_exports: int = _field(minimum=1)


@dataclasses.dataclass(frozen=True)
class TensorBoardConfig:
    port: int = _field(minimum=1, maximum=65535)
    reload_interval_secs: float = _field(exclusive_minimum=0.0)
    password: str | None = _field()
    password_file: str | None = _field()


@dataclasses.dataclass(frozen=True)
class SweepEntry:
    """One run of a sweep: its name (paths.run), the keys it changes, and the whole
    configuration it trains with."""
    run: str
    changes: tuple[tuple[str, Any], ...]
    config: Config = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Config:
    paths: PathsConfig
    data: DataConfig
    train: TrainConfig
    tutorial: TutorialConfig
    fast: FastConfig
    eval: EvalConfig
    tensorboard: TensorBoardConfig
    sweep: tuple[SweepEntry, ...] = ()

    def as_dict(self) -> dict:
        settings = {field.name: dataclasses.asdict(getattr(self, field.name))
                    for field in dataclasses.fields(self) if field.name != SWEEP}
        settings[SWEEP] = [{"run": entry.run, "set": dict(entry.changes)} for entry in self.sweep]
        return settings

    def to_yaml(self) -> str:
        """The configuration as a user writes it, the password left out (it lands in logs and in
        TensorBoard's Text tab)."""
        settings = self.as_dict()
        if settings["tensorboard"]["password"] is not None:
            settings["tensorboard"]["password"] = SECRET_LEFT_OUT
        return yaml.safe_dump(settings, sort_keys=False)


SWEEP = "sweep"
# With postponed annotations, dataclass field types are the names written above.
SECTIONS: dict[str, type] = {f.name: globals()[f.type] for f in dataclasses.fields(Config)
                             if f.name != SWEEP}
VALUE_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def load(config_file: str | None = None, overrides: list[str] = (),
         environ: Mapping[str, str] | None = None) -> Config:
    """Resolves the four layers into a Config, or raises ConfigError."""
    environ = os.environ if environ is None else environ
    raw = _read_yaml_file(DEFAULTS_FILE)
    user_file = config_file or environ.get(CONFIG_FILE_VARIABLE)
    if user_file:
        _merge(raw, _renamed(_read_yaml_file(Path(user_file))))
    _merge(raw, _renamed(_environment_overrides(environ)))
    _merge(raw, _renamed(_command_line_overrides(overrides)))
    return _build(raw)


class _Setting:
    """A value together with where it came from, so that errors can say where to fix it, and the
    text it was read from when it came as text (a variable, --set)."""

    def __init__(self, value: Any, origin: str, text: str | None = None):
        self.value = value
        self.origin = origin
        self.text = text


def _read_yaml_file(path: Path) -> dict[str, dict[str, _Setting]]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a YAML config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        if mark:
            where = f"line {mark.line + 1}, column {mark.column + 1}"
        else:  # a character YAML refuses (a control character) has a position, not a mark
            where = f"line {text.count(chr(10), 0, getattr(error, 'position', 0)) + 1}"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        # Where the thing it was reading began: an unclosed quote is found only at the end.
        context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and context_mark and context_mark.line != getattr(mark, "line", None):
            problem += f" ({context} that starts on line {context_mark.line + 1})"
        raise ConfigError(f"{path}: {where}: invalid YAML: {problem}") from None
    if document is None:
        raise ConfigError(f"{path}: the file is empty; expected sections such as 'train:'")
    if not isinstance(document, yaml.MappingNode):
        raise ConfigError(f"{path}: line {document.start_mark.line + 1}: expected a mapping of "
                          f"sections ({', '.join(SECTIONS)})")
    raw: dict[str, dict[str, _Setting]] = {}
    section_origins: dict[str, str] = {}
    for section_node, keys_node in document.value:
        section = _scalar_key(path, section_node)
        origin = f"{path}: line {section_node.start_mark.line + 1}"
        if section == SWEEP:
            raw[SWEEP] = {"entries": _Setting(_sweep_entries(path, text, keys_node), origin)}
            continue
        _check_section(RENAMED_KEYS.get(section, section), origin)
        # YAML would quietly keep only the last of two same keys: the other edit would be lost.
        if section in section_origins:
            raise ConfigError(f"{origin}: section '{section}' appears twice (first at "
                              f"{section_origins[section]}); put its keys under one '{section}:'")
        section_origins[section] = f"line {section_node.start_mark.line + 1}"
        if not isinstance(keys_node, yaml.MappingNode):
            raise ConfigError(f"{origin}: section '{section}' must be a mapping of keys")
        settings = raw.setdefault(section, {})
        for key_node, value_node in keys_node.value:
            key = _scalar_key(path, key_node)
            key_origin = f"{path}: line {key_node.start_mark.line + 1}"
            if key in settings:
                raise ConfigError(f"{key_origin}: '{section}.{key}' is set twice (first at "
                                  f"{settings[key].origin.rsplit(': ', 1)[-1]}); keep one")
            value = yaml.SafeLoader(text).construct_object(value_node, deep=True)
            settings[key] = _Setting(value, key_origin)
    return raw


def _sweep_entries(path: Path, text: str, node: yaml.Node) -> list[dict]:
    """The sweep's entries as written: each {"run": _Setting, "set": {dotted key: _Setting}}."""
    def line(of: yaml.Node) -> str:
        return f"{path}: line {of.start_mark.line + 1}"

    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{line(node)}: '{SWEEP}' must be a list of runs, each '- run: NAME' "
                          f"with 'set:' and the keys it changes")
    entries = []
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            raise ConfigError(f"{line(item)}: a sweep entry must be 'run: NAME' and 'set:'")
        entry = {"run": None, "set": {}, "origin": line(item)}
        for key_node, value_node in item.value:
            key = _scalar_key(path, key_node)
            if key == "run":
                value = yaml.SafeLoader(text).construct_object(value_node, deep=True)
                entry["run"] = _Setting(value, line(key_node))
            elif key == "set" and isinstance(value_node, yaml.MappingNode):
                for setting_node, setting_value in value_node.value:
                    dotted = _scalar_key(path, setting_node)
                    value = yaml.SafeLoader(text).construct_object(setting_value, deep=True)
                    entry["set"][dotted] = _Setting(value, line(setting_node))
            elif key == "set":
                raise ConfigError(f"{line(key_node)}: 'set:' takes the keys the run changes, "
                                  f"as section.key: value")
            else:
                raise ConfigError(f"{line(key_node)}: unknown key '{key}' in a sweep entry "
                                  f"(an entry has 'run' and 'set')")
        if entry["run"] is None:
            raise ConfigError(f"{entry['origin']}: a sweep entry without 'run:', its name")
        entries.append(entry)
    return entries


def _scalar_key(path: Path, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{path}: line {node.start_mark.line + 1}: keys must be plain names")
    return str(node.value)


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, _Setting]]:
    raw: dict[str, dict[str, _Setting]] = {}
    for variable, text in environ.items():
        if not variable.startswith(OVERRIDE_PREFIX) or variable == CONFIG_FILE_VARIABLE:
            continue
        section, _, key = variable[len(OVERRIDE_PREFIX):].lower().partition("_")
        origin = f"environment variable {variable}"
        if not key:
            raise ConfigError(f"{origin}: expected {OVERRIDE_PREFIX}<SECTION>_<KEY>")
        _refuse_sweep_outside_a_file(section, origin)
        raw.setdefault(section, {})[key] = _Setting(_parse_scalar(text, origin), origin, text)
    return raw


def _command_line_overrides(overrides: list[str]) -> dict[str, dict[str, _Setting]]:
    raw: dict[str, dict[str, _Setting]] = {}
    for override in overrides:
        origin = f"--set {override}"
        dotted_key, equals, text = override.partition("=")
        section, dot, key = dotted_key.strip().partition(".")
        if not equals or not dot or not section or not key:
            raise ConfigError(f"{origin}: expected --set section.key=value")
        _refuse_sweep_outside_a_file(section, origin)
        raw.setdefault(section, {})[key] = _Setting(_parse_scalar(text, origin), origin, text)
    return raw


def _renamed(layer: dict[str, dict[str, _Setting]]) -> dict[str, dict[str, _Setting]]:
    """The layer with each renamed key under its new name, and a warning for each."""
    renamed: dict[str, dict[str, _Setting]] = {}
    for section, settings in layer.items():
        for key, setting in settings.items():
            old = f"{section}.{key}"
            new = RENAMED_KEYS.get(old) or (f"{RENAMED_KEYS[section]}.{key}"
                                            if section in RENAMED_KEYS else old)
            if new != old:
                value = setting.value
                if isinstance(value, str):
                    value = RENAMED_VALUES.get(old, {}).get(value, value)
                setting = _Setting(value, setting.origin, setting.text)
                log.warning(f"{setting.origin}: '{old}' is now called '{new}' (write "
                            f"{_how_to_write(new, value, setting.origin)}); the old name still "
                            f"works in this release only")
            new_section, new_key = new.split(".")
            if new_key in renamed.get(new_section, {}):
                raise ConfigError(f"{setting.origin}: '{new}' is set twice, once under an old "
                                  f"name (also at {renamed[new_section][new_key].origin}); "
                                  f"keep one")
            renamed.setdefault(new_section, {})[new_key] = setting
    return renamed


def _how_to_write(dotted_key: str, value: Any, origin: str) -> str:
    """The setting as the user would write it now, where they wrote it."""
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    if origin.startswith("environment variable"):
        return f"{OVERRIDE_PREFIX}{dotted_key.replace('.', '_').upper()}={text}"
    if origin.startswith("--set"):
        return f"--set {dotted_key}={text}"
    section, key = dotted_key.split(".")
    return f"'{key}: {text}' under '{section}:'"


def _refuse_sweep_outside_a_file(section: str, origin: str) -> None:
    if section == SWEEP:
        raise ConfigError(f"{origin}: a sweep is a list of runs, given in a config file only")


def _parse_scalar(text: str, origin: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        raise ConfigError(f"{origin}: cannot read the value {text!r}") from None


def _merge(base: dict, overlay: dict) -> None:
    for section, keys in overlay.items():
        base.setdefault(section, {}).update(keys)


def _check_section(section: str, origin: str) -> type:
    if section not in SECTIONS:
        raise ConfigError(f"{origin}: unknown section '{section}'{_did_you_mean(section, SECTIONS)}"
                          f"; sections are {', '.join(SECTIONS)}")
    return SECTIONS[section]


def _build(raw: dict[str, dict[str, _Setting]]) -> Config:
    sweep = raw.pop(SWEEP, {}).get("entries")
    config = _build_sections(raw)
    if sweep is None:
        return config
    if not isinstance(sweep.value, list):
        raise ConfigError(f"{sweep.origin}: a sweep is given in a config file, as a list of runs")
    return dataclasses.replace(config, sweep=tuple(_sweep(raw, sweep.value)))


def _sweep(raw: dict[str, dict[str, _Setting]], entries: list[dict]):
    """Each entry as a run of its own: a safe, unique name and the keys it changes, each checked
    as it would be anywhere else, in the whole configuration it makes."""
    seen = {}
    for entry in entries:
        name = entry["run"]
        if not isinstance(name.value, str) or (problem := runs.name_problem(name.value)):
            raise ConfigError(f"{name.origin}: sweep run {name.value!r}: expected a folder name "
                              f"({problem if isinstance(name.value, str) else 'a text'})")
        if name.value in seen:
            raise ConfigError(f"{name.origin}: sweep run '{name.value}' twice (first at "
                              f"{seen[name.value].rsplit(': ', 1)[-1]}); each run needs a name "
                              f"of its own")
        seen[name.value] = name.origin
        overlay: dict[str, dict[str, _Setting]] = {"paths": {"run": name}}
        for dotted, setting in entry["set"].items():
            section, dot, key = dotted.partition(".")
            if not dot or not key:
                raise ConfigError(f"{setting.origin}: expected section.key, got '{dotted}'")
            if section == "paths":
                raise ConfigError(f"{setting.origin}: a sweep run keeps the appliance's paths; "
                                  f"'{dotted}' cannot change per run (its name is its folder)")
            overlay.setdefault(section, {})[key] = setting
        overlay = _renamed(overlay)
        layered = {section: dict(settings) for section, settings in raw.items()}
        _merge(layered, overlay)
        changes = tuple((f"{section}.{key}", setting.value)
                        for section, settings in overlay.items() if section != "paths"
                        for key, setting in settings.items())
        yield SweepEntry(name.value, changes, _build_sections(layered))


def _build_sections(raw: dict[str, dict[str, _Setting]]) -> Config:
    sections = {}
    for section, settings in raw.items():
        first_origin = next(iter(settings.values())).origin
        section_type = _check_section(section, first_origin)
        fields = {f.name: f for f in dataclasses.fields(section_type)}
        values = {}
        for key, setting in settings.items():
            if key not in fields:
                raise ConfigError(f"{setting.origin}: unknown key '{section}.{key}'"
                                  f"{_did_you_mean(key, fields, prefix=section + '.')}")
            values[key] = _checked(section, fields[key], setting)
        missing = set(fields) - set(values)
        if missing:  # only possible if the packaged defaults are broken
            raise ConfigError(f"{DEFAULTS_FILE}: missing keys {sorted(missing)} in '{section}'")
        sections[section] = section_type(**values)
    config = Config(**sections)
    _check_together(config, raw)
    return config


def _check_together(config: Config, raw: dict[str, dict[str, _Setting]]) -> None:
    """Rules between keys, reported where the key that breaks them was set: caught here, they
    stop the appliance before it starts instead of one of its programs later."""
    data = config.data
    test_images = (data.synthetic_test_examples if data.source == "synthetic"
                   else CIFAR10_TEST_IMAGES)
    if config.eval.num_examples > test_images:
        raise ConfigError(
            f"{raw['eval']['num_examples'].origin}: eval.num_examples: expected at most the "
            f"{test_images:,} images of the {data.source} test set, got "
            f"{config.eval.num_examples:,}")
    tensorboard = config.tensorboard
    if tensorboard.password and tensorboard.password_file:
        raise ConfigError(f"{raw['tensorboard']['password_file'].origin}: "
                          f"tensorboard.password_file: set either it or tensorboard.password, "
                          f"not both")
    if tensorboard.password_file:
        _check_password_file(tensorboard.password_file, raw["tensorboard"]["password_file"].origin)


def _check_password_file(path: str, origin: str) -> None:
    """A password file that is missing, unreadable or empty would leave TensorBoard open, or not
    start it at all: both are refused here, before anything starts."""
    where = f"{origin}: tensorboard.password_file: {path}"
    try:
        with open(path, encoding="utf-8") as secret:
            empty = not secret.read().strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise ConfigError(f"{where}: cannot read it as uid {os.getuid()} ({reason})") from None
    if empty:
        raise ConfigError(f"{where}: the file is empty; it must hold the password")


def _checked(section: str, field: dataclasses.Field, setting: _Setting) -> Any:
    value, name = setting.value, f"{section}.{field.name}"
    optional = field.type.endswith(" | None")
    base_type = VALUE_TYPES[field.type.removesuffix(" | None")]

    def fail(expectation: str):
        raise ConfigError(f"{setting.origin}: {name}: expected {expectation}, got {value!r}")

    if value is None:
        if optional:
            return None
        fail(f"a value ({_describe(base_type)})")
    if base_type is bool:
        if not isinstance(value, bool):
            fail("true or false (unquoted)")
    elif base_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("a whole number")
    elif base_type is float:
        # YAML 1.1 (PyYAML) reads 1e-3 as text: it wants 1.0e-3. People write 1e-3.
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        value = float(value)
        # .nan and .inf are YAML floats, and NaN passes every comparison below.
        if not math.isfinite(value):
            fail("a finite number")
    elif base_type is str:
        # A free text given as text stays that text: a password 123456 or a path `yes` is not
        # the number or the boolean YAML would read.
        if (setting.text is not None and not field.metadata["choices"]
                and isinstance(value, (bool, int, float))):
            value = setting.text
        if not isinstance(value, str) and field.metadata["choices"]:
            fail("one of " + ", ".join(field.metadata["choices"]))  # e.g. `off`, read as false
        if not isinstance(value, str) or not value.strip():
            fail("a non-empty text")
        if "\0" in value:  # no path or URL can hold one; a path would be cut short at it
            fail("a text without NUL characters")
        if field.metadata["url"] and urllib.parse.urlsplit(value).scheme not in URL_SCHEMES:
            fail("a URL starting " + " or ".join(f"{scheme}://" for scheme in URL_SCHEMES))
        if field.metadata["folder_name"] and (problem := runs.name_problem(value)):
            fail(f"a folder name ({problem})")

    rules = field.metadata
    if rules["choices"] and value not in rules["choices"]:
        fail("one of " + ", ".join(rules["choices"]))
    if rules["minimum"] is not None and value < rules["minimum"]:
        fail(f"{_describe(base_type)} >= {rules['minimum']}")
    if rules["exclusive_minimum"] is not None and value <= rules["exclusive_minimum"]:
        fail(f"{_describe(base_type)} > {rules['exclusive_minimum']}")
    if rules["maximum"] is not None and value > rules["maximum"]:
        fail(f"{_describe(base_type)} <= {rules['maximum']}")
    return value


def _describe(base_type: type) -> str:
    return {int: "a whole number", float: "a number", str: "a text", bool: "true or false"}[base_type]


def _did_you_mean(word: str, candidates, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def with_sections_of(config: Config, record: dict, sections: tuple[str, ...]) -> Config:
    """`config` with the keys of `sections` taken from `record` (a run's run.yaml, as its trainer
    wrote it) where it has them; keys this version does not know are left out."""
    changes = {}
    for section in sections:
        current = getattr(config, section)
        known = {field.name for field in dataclasses.fields(current)}
        values = {key: value for key, value in (record.get(section) or {}).items()
                  if key in known}
        changes[section] = dataclasses.replace(current, **values)
    return dataclasses.replace(config, **changes)


def check_paths(config: Config) -> None:
    """Fails early, naming the key, when a path cannot serve: a file where a folder belongs, or a
    folder the appliance may not write. Creates nothing."""
    _check_folder("paths.train_dir", Path(config.paths.train_dir), must_write=True)
    data_dir = Path(config.paths.data_dir)
    # A read-only data_dir is fine when the data is already there (a mounted copy).
    already_there = (data_dir / "cifar-10-batches-bin").is_dir() and config.data.source == "cifar10"
    _check_folder("paths.data_dir", data_dir, must_write=not already_there)


def _check_folder(key: str, folder: Path, must_write: bool) -> None:
    existing = folder
    while not existing.exists():  # the folder will be created inside its nearest existing parent
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: {existing} is a file, expected a directory")
    if must_write and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: {existing} is not writable by uid {os.getuid()}")
