"""docker/cifar10.env, the env_file of every compose service: rendered from the schema as
defaults.yaml is (app/config/defaults.py), so that every CIFAR10_* variable the appliance reads
reaches its containers, and each name in it is one the appliance reads."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from app import config as configuration
from app.config import defaults, schema


def names() -> list[str]:
    text = defaults.ENV_FILE.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_committed_env_file_is_what_the_schema_renders():
    # After a change in app/config/schema.py (or app/compat.py), run `python -m
    # app.config.defaults` (or `make defaults`): it renders docker/cifar10.env with defaults.yaml.
    assert defaults.ENV_FILE.read_text(encoding="utf-8") == defaults.render_env_file()


def test_it_names_every_key_but_the_volumes_mount_points_and_the_config_file_bare():
    listed = names()
    for section, section_type in schema.SECTIONS.items():
        for key in dataclasses.fields(section_type):
            variable = f"CIFAR10_{section.upper()}_{key.name.upper()}"
            if f"{section}.{key.name}" in defaults.MOUNT_POINTS:
                # A host's folder exported for `make run` would name nothing in the container.
                assert variable not in listed
            else:
                assert variable in listed, f"{section}.{key.name}"
    assert configuration.CONFIG_FILE_VARIABLE in listed
    # A bare name: passed on only when set. A value here would be set in every container.
    assert all("=" not in name and name == name.strip() for name in listed)
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("variable", [name for name in names()
                                      if name != configuration.CONFIG_FILE_VARIABLE])
def test_each_variable_is_one_the_configuration_reads(variable):
    """Set to its key's default (under an old name, the new key's), the variable loads: no name
    here is one that config.load would refuse as unknown."""
    section, _, key = variable[len(configuration.OVERRIDE_PREFIX):].lower().partition("_")
    new_section, new_key = defaults.compat.RENAMED_KEYS.get(
        f"{section}.{key}", f"{defaults.compat.section_named_now(section)}.{key}").split(".")
    value = getattr(getattr(configuration.load(None, [], {}), new_section), new_key)
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    configuration.load(None, [], {variable: text})
