"""The appliance's exit codes: what each program's exit tells supervisord, the entrypoint, the
container engine and a user's script.

supervisord restarts a program only after an exit that is none of DONE, BAD_INPUT and DIVERGED
(app/runtime/supervisord.conf lists them as `exitcodes=0,2,3`): a restart would not fix bad input, and
a diverged run would only diverge again. Any other code is a crash, which it answers with a restart.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    DONE = 0
    # `health`: something is not as it should be (a container health check's "unhealthy").
    UNHEALTHY = 1
    # A bad configuration or bad input (a damaged data file, checkpoints of another model): the
    # message names what and where.
    BAD_INPUT = 2
    # The loss became NaN or infinite; the last good checkpoint is kept.
    DIVERGED = 3
