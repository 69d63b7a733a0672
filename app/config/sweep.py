"""A sweep as the configuration knows it: runs that the trainer trains one after another, each a
name (its folder, paths.run) and the keys it changes, listed in a config file only:

    sweep:
      - run: lr-0.05
        set: {tutorial.initial_learning_rate: 0.05}
      - run: lr-0.2
        set: {tutorial.initial_learning_rate: 0.2, train.batch_size: 256}

Everything about the list is here, in the order it happens: reading it from the file (`read`),
refusing it anywhere else (`refuse_outside_a_file`), checking each run in the whole configuration
it makes, before anything starts (`take`, `entries`), and finding one run by name for
`train --sweep-run` (`find`). How the runs are trained is app/train/sweep.py's.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from app import compat
from app.config import sources
from app.config.sources import ConfigError, Setting
from app.volume import runs

if TYPE_CHECKING:  # the schema holds the sweep's entries: it imports this module
    from app.config.schema import Config

SECTION = "sweep"

Layers = dict[str, dict[str, Setting]]


@dataclasses.dataclass(frozen=True)
class SweepEntry:
    """One run of a sweep: its name (paths.run), the keys it changes, and the whole
    configuration it trains with."""
    run: str
    changes: tuple[tuple[str, Any], ...]
    config: Config = dataclasses.field(repr=False, compare=False)


def read(path: Path, text: str, node: yaml.Node) -> list[dict]:
    """The sweep's entries as the file writes them: each {"run": Setting, "set": {dotted key:
    Setting}}, each Setting with its line."""
    def line(of: yaml.Node) -> str:
        return f"{path}: line {of.start_mark.line + 1}"

    def value(of: yaml.Node) -> Any:
        return yaml.SafeLoader(text).construct_object(of, deep=True)

    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{line(node)}: '{SECTION}' must be a list of runs, each '- run: NAME' "
                          f"with 'set:' and the keys it changes")
    entries = []
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            raise ConfigError(f"{line(item)}: a sweep entry must be 'run: NAME' and 'set:'")
        entry = {"run": None, "set": {}, "origin": line(item)}
        for key_node, value_node in item.value:
            key = sources.scalar_key(path, key_node)
            if key == "run":
                entry["run"] = Setting(value(value_node), line(key_node))
            elif key == "set" and isinstance(value_node, yaml.MappingNode):
                for setting_node, setting_value in value_node.value:
                    dotted = sources.scalar_key(path, setting_node)
                    entry["set"][dotted] = Setting(value(setting_value), line(setting_node))
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


def refuse_outside_a_file(layer: Layers) -> None:
    """A sweep given by a variable or --set: refused, naming where."""
    for setting in layer.get(SECTION, {}).values():
        raise ConfigError(f"{setting.origin}: a sweep is a list of runs, given in a config "
                          f"file only")


def take(raw: Layers) -> list[dict]:
    """The entries `read` found, taken out of the resolved layers `raw` (none: an empty list)."""
    written = raw.pop(SECTION, {}).get("entries")
    return [] if written is None else written.value


def entries(written: list[dict], raw: Layers,
            build: Callable[[Layers], Config]) -> tuple[SweepEntry, ...]:
    """Each run of the sweep in the whole configuration that build(layers) makes of `raw` and
    its keys: a safe, unique name and the keys it changes, each checked as it would be
    anywhere else."""
    seen = {}
    result = []
    for entry in written:
        name = entry["run"]
        if not isinstance(name.value, str) or (problem := runs.name_problem(name.value)):
            raise ConfigError(f"{name.origin}: sweep run {name.value!r}: expected a folder name "
                              f"({problem if isinstance(name.value, str) else 'a text'})")
        if name.value in seen:
            raise ConfigError(f"{name.origin}: sweep run '{name.value}' twice (first at "
                              f"{seen[name.value].rsplit(': ', 1)[-1]}); each run needs a name "
                              f"of its own")
        seen[name.value] = name.origin
        overlay: Layers = {"paths": {"run": name}}
        for dotted, setting in entry["set"].items():
            section, dot, key = dotted.partition(".")
            if not dot or not key:
                raise ConfigError(f"{setting.origin}: expected section.key, got '{dotted}'")
            if section == "paths":
                raise ConfigError(f"{setting.origin}: a sweep run keeps the appliance's paths; "
                                  f"'{dotted}' cannot change per run (its name is its folder)")
            overlay.setdefault(section, {})[key] = setting
        overlay = compat.as_written_now(overlay)
        layered = {section: dict(settings) for section, settings in raw.items()}
        sources.merge(layered, overlay)
        changes = tuple((f"{section}.{key}", setting.value)
                        for section, settings in overlay.items() if section != "paths"
                        for key, setting in settings.items())
        result.append(SweepEntry(name.value, changes, build(layered)))
    return tuple(result)


def as_written(sweep: tuple[SweepEntry, ...]) -> list[dict]:
    """The sweep as a config file lists it."""
    return [{"run": entry.run, "set": dict(entry.changes)} for entry in sweep]


def find(sweep: tuple[SweepEntry, ...], run: str) -> SweepEntry:
    """The entry named `run`, as `train --sweep-run` asks for it."""
    for entry in sweep:
        if entry.run == run:
            return entry
    raise ConfigError(f"--sweep-run {run}: the config's sweep has no run '{run}' "
                      f"(it has {', '.join(e.run for e in sweep) or 'none'})")
