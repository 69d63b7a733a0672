"""Runs a command and passes on its output with every line prefixed: `train | step 120 ...`.

Usage: python -m app.runtime.prefix_output NAME COMMAND [ARG...]

supervisord copies each program's output to its own stdout as it comes, so with three programs
on one console nobody could tell whose line is whose, and supervisor 4 has no option to prefix.

Why a wrapper process and not the alternatives:
  * `COMMAND | sed 's/^/train | /'`: supervisord stops a program by signalling its whole process
    group (stopasgroup, which TensorBoard's data-server child needs). sed dies at once on that
    SIGTERM while the trainer is still saving its final checkpoint, so the last lines are lost
    and the trainer's next print hits a broken pipe. A pipeline's exit status is also sed's,
    which would hide the trainer's exit code (0, 2, 3) from supervisord's restart rules.
  * an event listener on PROCESS_LOG events: supervisord drops events when a listener falls
    behind (its buffer holds ten), so lines would go missing exactly when a program is chatty.

This wrapper ignores SIGTERM/SIGINT/SIGHUP (the command gets the group's signal itself), reads
until the command closes its output, so no line is lost, and then exits with the command's own
status, or dies of the same signal, so supervisord sees exactly what the command did.
"""
import os
import signal
import subprocess
import sys
import threading

from app.exit_codes import ExitCode

GRACE_FOR_LAST_LINES_SECS = 2.0
# Signals the command gets from supervisord's group signal; the wrapper outlives them.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def copy_lines(source, destination, prefix: bytes) -> None:
    for line in iter(source.readline, b""):
        if not line.endswith(b"\n"):  # the last line of a program that did not end it
            line += b"\n"
        destination.write(prefix + line)
        destination.flush()


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m app.runtime.prefix_output NAME COMMAND [ARG...]", file=sys.stderr)
        return ExitCode.BAD_INPUT
    name, command = argv[1], argv[2:]
    prefix = f"{name} | ".encode()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Ignored only now, after the spawn: the command must keep the default handlers.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    copiers = [threading.Thread(target=copy_lines, daemon=True,
                                args=(child.stdout, sys.stdout.buffer, prefix)),
               threading.Thread(target=copy_lines, daemon=True,
                                args=(child.stderr, sys.stderr.buffer, prefix))]
    for copier in copiers:
        copier.start()
    status = child.wait()
    # A grandchild that outlives the command (TensorBoard's data server) may hold the pipes open;
    # its lines are not worth keeping a finished program looking alive to supervisord.
    for copier in copiers:
        copier.join(timeout=GRACE_FOR_LAST_LINES_SECS)
    if status < 0:  # killed by a signal: die of the same one, so supervisord reports it as such
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status  # for a signal whose default is not to terminate
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
