"""defaults.yaml, rendered from the schema: every key with its default and what it is for.

The schema is written once, in Python (app/config/schema.py): each key is a dataclass field that
holds its type, its default, its limits and its documentation together, where the code that
reads the key and the checks that guard it look. defaults.yaml is what users read and lay their
own files over; it is rendered from those fields, and a unit test holds the committed file to
exactly what renders, so that the two cannot drift. Adding a key is adding a field, then

    python -m app.config.defaults        (or `make defaults`): rewrites app/config/defaults.yaml
                                         and docker/cifar10.env

docker/cifar10.env is rendered from the same fields: every CIFAR10_* variable the appliance reads,
one bare name a line, which Compose (env_file) and `docker run --env-file` pass on from the shell
only when it is set there. So every key reaches every container without a list kept by hand, but
the two paths where the container mounts its volumes (MOUNT_POINTS).

(The YAML as the source instead would have to spell each key's type and limits in comments or
tags that every user then reads past, and the code would meet its keys only at run time.)
"""
from __future__ import annotations

import dataclasses
import inspect

import yaml

from app import compat
from app.config import schema, sources, sweep

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

# Beside the compose files: docker/compose.yaml names it as each service's env_file.
ENV_FILE = schema.DEFAULTS_FILE.parents[2] / "docker" / "cifar10.env"
ENV_FILE_HEADER = """\
Every CIFAR10_* variable the appliance reads, one name a line (rendered from
app/config/schema.py by `python -m app.config.defaults`: change the schema, not this file).

docker/compose.yaml gives this file to every service as its env_file, and `docker run --env-file
docker/cifar10.env` takes it too: a name set in your shell (for Compose, also one in .env) reaches
the container with its value; one that is not set stays unset there, so its default holds
(app/config/defaults.yaml). Not here: CIFAR10_PATHS_TRAIN_DIR and CIFAR10_PATHS_DATA_DIR. In the
container those are where its volumes are mounted, /cifar10_train and /cifar10_data; the host's
folders exported for `make run` or the programs without Docker would name nothing there."""

# In the container, where its volumes are: a shell's value is a host path (make run's, the
# native programs') and must not follow Compose or `docker run --env-file` in.
MOUNT_POINTS = ("paths.train_dir", "paths.data_dir")


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


def render_env_file() -> str:
    """The text of docker/cifar10.env: CIFAR10_CONFIG, then each section's variables, then the
    old names that app/compat.py still reads (they go when it drops them)."""
    lines = [*_comment(ENV_FILE_HEADER, indent=""), "", sources.CONFIG_FILE_VARIABLE]
    for section, section_type in schema.SECTIONS.items():
        lines += ["", f"# {section}"]
        lines += [_variable(section, key.name) for key in dataclasses.fields(section_type)
                  if f"{section}.{key.name}" not in MOUNT_POINTS]
    old_names = []
    for old, new in compat.RENAMED_KEYS.items():
        if "." in old:
            old_names.append(_variable(*old.split(".")))
        else:  # a section renamed: each of its keys under the old section's name
            old_names += [_variable(old, key.name)
                          for key in dataclasses.fields(schema.SECTIONS[new])]
    lines += ["", "# Old names, read in this release only (app/compat.py)", *old_names]
    return "\n".join(lines) + "\n"


def _variable(section: str, key: str) -> str:
    return f"{sources.OVERRIDE_PREFIX}{section.upper()}_{key.upper()}"


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in text.splitlines()] if text else []


def _scalar(value) -> str:
    """A default as YAML writes it: null, true, 0.9999, auto, a URL."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def main() -> None:
    schema.DEFAULTS_FILE.write_text(render(), encoding="utf-8")
    ENV_FILE.write_text(render_env_file(), encoding="utf-8")
    print(f"wrote {schema.DEFAULTS_FILE} and {ENV_FILE}")


if __name__ == "__main__":
    main()
