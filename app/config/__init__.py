"""The configuration: the schema (schema.py), where its settings come from (sources.py) and the
sweep (sweep.py), with every key and its default documented in defaults.yaml, which defaults.py
renders from the schema. What the rest of the appliance uses:"""
from app.config.schema import (CONFIG_FILE_VARIABLE, DEFAULTS_FILE, OVERRIDE_PREFIX, Config,
                               ConfigError, check_paths, config_of_run, load,
                               with_sections_of)
from app.config.sweep import find as find_sweep_run

__all__ = ["CONFIG_FILE_VARIABLE", "DEFAULTS_FILE", "OVERRIDE_PREFIX", "Config", "ConfigError",
           "check_paths", "config_of_run", "find_sweep_run", "load", "with_sections_of"]
