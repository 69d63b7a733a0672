"""Where a configuration's settings come from, each with its origin so that an error can say
where to fix it: YAML files (file and line), CIFAR10_<SECTION>_<KEY> variables, --set
section.key=value. Old names of renamed keys are read as app/compat.py says, for a release.

Values given as text (variables, --set) are read as YAML scalars, so "2000" is a number and
"false" a boolean; a free text given as text stays that text (app/config/schema.py). A file may also
hold a sweep: a list of runs, each a name and the keys it changes, read by app/config/sweep.py.
What the settings must be is app/config/schema.py's: here they are only read, each layer a
{section: {key: Setting}}.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from app import compat
from app.exit_codes import AppError

CONFIG_FILE_VARIABLE = "CIFAR10_CONFIG"
OVERRIDE_PREFIX = "CIFAR10_"

# The word for "the appliance decides" in a key that also takes a number (schema.py's Auto).
AUTO = "auto"


class ConfigError(AppError, ValueError):
    """A configuration the appliance refuses to start with. str() is the whole message."""
    log_prefix = "config error"


class Setting:
    """A value together with where it came from, so that errors can say where to fix it, and the
    text it was read from when it came as text (a variable, --set)."""

    def __init__(self, value: Any, origin: str, text: str | None = None):
        self.value = value
        self.origin = origin
        self.text = text


def read_yaml_file(path: Path, sections,
                   lists: Mapping[str, Callable]) -> dict[str, dict[str, Setting]]:
    """A YAML file's settings; `sections` are those a config may have, `lists` those written as a
    list instead, each with the function that reads it, read(path, text, node) (the sweep)."""
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
                          f"sections ({', '.join(sections)})")
    raw: dict[str, dict[str, Setting]] = {}
    section_origins: dict[str, str] = {}
    for section_node, keys_node in document.value:
        section = scalar_key(path, section_node)
        origin = f"{path}: line {section_node.start_mark.line + 1}"
        if section in lists:
            raw[section] = {"entries": Setting(lists[section](path, text, keys_node), origin)}
            continue
        check_section(compat.section_named_now(section), sections, origin)
        # YAML would quietly keep only the last of two same keys: the other edit would be lost.
        if section in section_origins:
            raise ConfigError(f"{origin}: section '{section}' appears twice (first at "
                              f"{section_origins[section]}); put its keys under one '{section}:'")
        section_origins[section] = f"line {section_node.start_mark.line + 1}"
        if not isinstance(keys_node, yaml.MappingNode):
            raise ConfigError(f"{origin}: section '{section}' must be a mapping of keys")
        settings = raw.setdefault(section, {})
        for key_node, value_node in keys_node.value:
            key = scalar_key(path, key_node)
            key_origin = f"{path}: line {key_node.start_mark.line + 1}"
            if key in settings:
                raise ConfigError(f"{key_origin}: '{section}.{key}' is set twice (first at "
                                  f"{settings[key].origin.rsplit(': ', 1)[-1]}); keep one")
            value = yaml.SafeLoader(text).construct_object(value_node, deep=True)
            settings[key] = Setting(value, key_origin)
    return raw


def scalar_key(path: Path, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{path}: line {node.start_mark.line + 1}: keys must be plain names")
    return str(node.value)


def environment_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Setting]]:
    raw: dict[str, dict[str, Setting]] = {}
    for variable, text in environ.items():
        if not variable.startswith(OVERRIDE_PREFIX) or variable == CONFIG_FILE_VARIABLE:
            continue
        section, _, key = variable[len(OVERRIDE_PREFIX):].lower().partition("_")
        origin = f"environment variable {variable}"
        if not key:
            raise ConfigError(f"{origin}: expected {OVERRIDE_PREFIX}<SECTION>_<KEY>")
        raw.setdefault(section, {})[key] = Setting(_parse_scalar(text, origin), origin, text)
    return raw


def command_line_overrides(overrides: list[str]) -> dict[str, dict[str, Setting]]:
    raw: dict[str, dict[str, Setting]] = {}
    for override in overrides:
        origin = f"--set {override}"
        dotted_key, equals, text = override.partition("=")
        section, dot, key = dotted_key.strip().partition(".")
        if not equals or not dot or not section or not key:
            raise ConfigError(f"{origin}: expected --set section.key=value")
        raw.setdefault(section, {})[key] = Setting(_parse_scalar(text, origin), origin, text)
    return raw


def how_to_write(dotted_key: str, value: Any, origin: str) -> str:
    """The setting as the user would write it now, where they wrote it."""
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    if origin.startswith("environment variable"):
        return f"{OVERRIDE_PREFIX}{dotted_key.replace('.', '_').upper()}={text}"
    if origin.startswith("--set"):
        return f"--set {dotted_key}={text}"
    section, key = dotted_key.split(".")
    return f"'{key}: {text}' under '{section}:'"


def _parse_scalar(text: str, origin: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        raise ConfigError(f"{origin}: cannot read the value {text!r}") from None


def merge(base: dict, overlay: dict) -> None:
    for section, keys in overlay.items():
        base.setdefault(section, {}).update(keys)


def did_you_mean(word: str, candidates, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def check_section(section: str, sections, origin: str) -> None:
    if section not in sections:
        raise ConfigError(f"{origin}: unknown section '{section}'{did_you_mean(section, sections)}"
                          f"; sections are {', '.join(sections)}")
