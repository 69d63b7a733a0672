"""defaults.yaml, rendered from the schema: every key with its default and what it is for.

The schema is written once, in Python (app/config/schema.py): each key is a dataclass field that
holds its type, its default, its limits and its documentation together, where the code that
reads the key and the checks that guard it look. defaults.yaml is what users read and lay their
own files over; it is rendered from those fields, and a unit test holds the committed file to
exactly what renders, so that the two cannot drift. Adding a key is adding a field, then

    python -m app.config.defaults        (or `make defaults`): rewrites app/config/defaults.yaml

(The YAML as the source instead would have to spell each key's type and limits in comments or
tags that every user then reads past, and the code would meet its keys only at run time.)
"""
from __future__ import annotations

import dataclasses
import inspect

import yaml

from app.config import schema, sweep

HEADER = """\
cifar10-appliance: the default configuration (rendered from app/config/schema.py by
`python -m app.config.defaults`: change the schema, not this file).

Every key is listed here with its default. A file of yours (mounted over
/etc/cifar10/config.yaml, or named by --config / CIFAR10_CONFIG) needs only the keys it
changes; it is laid over these defaults. Then come environment overrides,
CIFAR10_<SECTION>_<KEY>=value (e.g. CIFAR10_TRAIN_MAX_STEPS=2000), and last
`--set section.key=value` on the command line. Values given as text are read as YAML, so
`--set train.max_steps=2000` is a number and `--set eval.use_moving_averages=false` a boolean.
An unknown key, a wrong type or a value out of range is an error that names the key."""


def render() -> str:
    """The text of defaults.yaml: the header, then each section with its documentation, and
    each key under its own (a key with none shares the one above it)."""
    lines = _comment(HEADER, indent="")
    for section in dataclasses.fields(schema.Config):
        if section.name not in (*schema.SECTIONS, sweep.SECTION):
            continue  # not a key (Config.chosen)
        lines.append("")
        if section.name == sweep.SECTION:
            lines += _comment(section.metadata["doc"], indent="")
            lines.append(f"{section.name}: []")
            continue
        section_type = schema.SECTIONS[section.name]
        lines += _comment(inspect.getdoc(section_type), indent="")
        lines.append(f"{section.name}:")
        for key in dataclasses.fields(section_type):
            lines += _comment(key.metadata["doc"], indent="  ")
            lines.append(f"  {key.name}: {_scalar(key.default)}")
    return "\n".join(lines) + "\n"


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in text.splitlines()] if text else []


def _scalar(value) -> str:
    """A default as YAML writes it: null, true, 0.9999, auto, a URL."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def main() -> None:
    schema.DEFAULTS_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {schema.DEFAULTS_FILE}")


if __name__ == "__main__":
    main()
