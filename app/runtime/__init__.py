"""How the programs run on the machine: devices, supervisord and its output, health, logs and the
temp folder."""
