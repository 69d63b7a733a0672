"""The configuration: YAML in, one typed, validated, frozen object out.

Layers, each over the one before:
  1. the packaged defaults, app/config/defaults.yaml (every key, documented);
  2. the user's file (--config FILE, or the CIFAR10_CONFIG environment variable): only the keys
     it changes;
  3. environment overrides CIFAR10_<SECTION>_<KEY>=value, e.g. CIFAR10_TRAIN_MAX_STEPS=2000;
  4. command-line overrides --set section.key=value.

Values given as text (layers 3 and 4) are read as YAML scalars, so "2000" is a number and "false"
a boolean. Everything else is strict: an unknown key, a wrong type or a value out of range is a
ConfigError whose message names the source (file and line, variable, or --set) and the key.

A key that was renamed is still read under its old name for a release, with a one-line warning
that names the new one (app/config/sources.py).

A file may also list a sweep: runs that the trainer trains one after another, each a name and the
keys it changes (app/train/sweep.py). Each is checked here like the rest, before anything starts.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

import yaml

from app.config import sources
from app.volume import runs
# What callers know the configuration by (app/config/__init__.py passes them on).
from app.config.sources import CONFIG_FILE_VARIABLE, OVERRIDE_PREFIX, ConfigError  # noqa: F401

DEFAULTS_FILE = Path(__file__).resolve().parent / "defaults.yaml"
# What urllib can fetch the data set from (file: a copy on a mounted disk).
URL_SCHEMES = ("http", "https", "ftp", "file")
# The real test set: test_batch.bin holds 10,000 images. (The synthetic one holds what
# data.synthetic_test_examples says.)
CIFAR10_TEST_IMAGES = 10_000

# What to_yaml shows instead of a password.
SECRET_LEFT_OUT = "(set, not shown)"


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
                    for field in dataclasses.fields(self) if field.name != sources.SWEEP}
        settings[sources.SWEEP] = [{"run": entry.run, "set": dict(entry.changes)}
                                   for entry in self.sweep]
        return settings

    def to_yaml(self) -> str:
        """The configuration as a user writes it, the password left out (it lands in logs and in
        TensorBoard's Text tab)."""
        settings = self.as_dict()
        if settings["tensorboard"]["password"] is not None:
            settings["tensorboard"]["password"] = SECRET_LEFT_OUT
        return yaml.safe_dump(settings, sort_keys=False)


# With postponed annotations, dataclass field types are the names written above.
SECTIONS: dict[str, type] = {f.name: globals()[f.type] for f in dataclasses.fields(Config)
                             if f.name != sources.SWEEP}
VALUE_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def load(config_file: str | None = None, overrides: list[str] = (),
         environ: Mapping[str, str] | None = None) -> Config:
    """Resolves the four layers into a Config, or raises ConfigError."""
    environ = os.environ if environ is None else environ
    raw = sources.read_yaml_file(DEFAULTS_FILE, SECTIONS)
    user_file = config_file or environ.get(sources.CONFIG_FILE_VARIABLE)
    if user_file:
        sources.merge(raw, sources.renamed(sources.read_yaml_file(Path(user_file), SECTIONS)))
    sources.merge(raw, sources.renamed(sources.environment_overrides(environ)))
    sources.merge(raw, sources.renamed(sources.command_line_overrides(overrides)))
    return _build(raw)


def _check_section(section: str, origin: str) -> type:
    sources.check_section(section, SECTIONS, origin)
    return SECTIONS[section]


def _build(raw: dict[str, dict[str, sources.Setting]]) -> Config:
    sweep = raw.pop(sources.SWEEP, {}).get("entries")
    config = _build_sections(raw)
    if sweep is None:
        return config
    if not isinstance(sweep.value, list):
        raise ConfigError(f"{sweep.origin}: a sweep is given in a config file, as a list of runs")
    return dataclasses.replace(config, sweep=tuple(_sweep(raw, sweep.value)))


def _sweep(raw: dict[str, dict[str, sources.Setting]], entries: list[dict]):
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
        overlay: dict[str, dict[str, sources.Setting]] = {"paths": {"run": name}}
        for dotted, setting in entry["set"].items():
            section, dot, key = dotted.partition(".")
            if not dot or not key:
                raise ConfigError(f"{setting.origin}: expected section.key, got '{dotted}'")
            if section == "paths":
                raise ConfigError(f"{setting.origin}: a sweep run keeps the appliance's paths; "
                                  f"'{dotted}' cannot change per run (its name is its folder)")
            overlay.setdefault(section, {})[key] = setting
        overlay = sources.renamed(overlay)
        layered = {section: dict(settings) for section, settings in raw.items()}
        sources.merge(layered, overlay)
        changes = tuple((f"{section}.{key}", setting.value)
                        for section, settings in overlay.items() if section != "paths"
                        for key, setting in settings.items())
        yield SweepEntry(name.value, changes, _build_sections(layered))


def _build_sections(raw: dict[str, dict[str, sources.Setting]]) -> Config:
    sections = {}
    for section, settings in raw.items():
        first_origin = next(iter(settings.values())).origin
        section_type = _check_section(section, first_origin)
        fields = {f.name: f for f in dataclasses.fields(section_type)}
        values = {}
        for key, setting in settings.items():
            if key not in fields:
                raise ConfigError(f"{setting.origin}: unknown key '{section}.{key}'"
                                  f"{sources.did_you_mean(key, fields, prefix=section + '.')}")
            values[key] = _checked(section, fields[key], setting)
        missing = set(fields) - set(values)
        if missing:  # only possible if the packaged defaults are broken
            raise ConfigError(f"{DEFAULTS_FILE}: missing keys {sorted(missing)} in '{section}'")
        sections[section] = section_type(**values)
    config = Config(**sections)
    _check_together(config, raw)
    return config


def _check_together(config: Config, raw: dict[str, dict[str, sources.Setting]]) -> None:
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


def _checked(section: str, field: dataclasses.Field, setting: sources.Setting) -> Any:
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


def config_of_run(config: Config, run: str) -> Config:
    """`config` with the train and recipe sections that the run's trainer last started with (its
    run.yaml), so that the run's model is built as it was trained; `config` itself for a run
    without one (trained before runs kept a record)."""
    record = runs.read_record(runs.folder(config.paths.train_dir, run))
    return with_sections_of(config, record or {}, ("train", "tutorial", "fast"))


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
