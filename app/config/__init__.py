"""The configuration: the schema (schema.py) and where its settings come from (sources.py), with
every key and its default documented in defaults.yaml. What the rest of the appliance uses:"""
from app.config.schema import (CONFIG_FILE_VARIABLE, DEFAULTS_FILE, OVERRIDE_PREFIX, Config,
                               ConfigError, check_paths, config_of_run, load, with_sections_of)

__all__ = ["CONFIG_FILE_VARIABLE", "DEFAULTS_FILE", "OVERRIDE_PREFIX", "Config", "ConfigError",
           "check_paths", "config_of_run", "load", "with_sections_of"]
