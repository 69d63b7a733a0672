"""The appliance's exit codes, and the errors that end a program with one: what each program's exit
tells supervisord, the entrypoint, the container engine and a user's script.

supervisord restarts a program only after an exit that is none of DONE, BAD_INPUT and DIVERGED
(app/runtime/supervisord.conf lists them as `exitcodes=0,2,3`): a restart would not fix bad input,
and a diverged run would only diverge again. Any other code is a crash, which it answers with a
restart: CRASH, or the 1 of an exception nothing caught (Python's own exit code for that).

A program that cannot go on raises an AppError (or a subclass, named after what went wrong); it
carries its exit code and the word its log line starts with, and `python -m app` (app/__main__.py)
turns it into that one line and that exit code, in one place.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    DONE = 0
    # `health`: something is not as it should be (a container health check's "unhealthy", which
    # Docker reads as exit 1 and nothing else).
    UNHEALTHY = 1
    # A bad configuration or bad input (a damaged data file, checkpoints of another model): the
    # message names what and where.
    BAD_INPUT = 2
    # The loss became NaN or infinite; the last good checkpoint is kept.
    DIVERGED = 3
    # Training could not go on for a reason a restart may cure (a disk that stayed full while a
    # stop was asked for). sysexits' EX_SOFTWARE: far from 1, which health's answer and Python's
    # uncaught exceptions use, and from the codes above that supervisord does not restart.
    CRASH = 70


# What supervisord does not restart (its `exitcodes=` in app/runtime/supervisord.conf).
NOT_RESTARTED = (ExitCode.DONE, ExitCode.BAD_INPUT, ExitCode.DIVERGED)


class AppError(Exception):
    """An error that ends the program: str() is the whole message (what, where, and what to do),
    logged as `<log_prefix>: <message>` before the program exits with `exit_code`."""
    exit_code: ExitCode = ExitCode.BAD_INPUT
    log_prefix = "error"
