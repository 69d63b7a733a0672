#!/usr/bin/env bash
# The appliance's front door, in the container and natively (`make run`) alike.
#
#   entrypoint.sh [--config FILE] [--set section.key=value ...]
#                                 check the config, prepare the folders, make the data set ready,
#                                 then run train, eval and tensorboard under supervisord, each
#                                 given these arguments, e.g.
#                                 `docker run ... IMAGE --set train.batch_size=256`
#   entrypoint.sh ROLE [ARG...]   just that program: `python -m app ROLE ARG...`, where ROLE is
#                                 any command of `python -m app` (train, eval, tensorboard, data,
#                                 report, predict, check-config, health: `python -m app --help`)
#   entrypoint.sh supervisorctl [ARG...]
#                                 supervisorctl of the running appliance, e.g. `... status`
#   entrypoint.sh COMMAND...      anything else is run as is (bash, ls /cifar10_train, ...)
#
# Environment:
#   CIFAR10_CONFIG               your YAML config, laid over the defaults in app/config/defaults.yaml
#   CIFAR10_<SECTION>_<KEY>      one key, e.g. CIFAR10_TRAIN_MAX_STEPS=2000 (see config.yaml)
#   PUID, PGID                   started as root: the uid/gid to run as. By default the owner of
#                                paths.train_dir, so files on a mounted volume stay its owner's.
#   APPLIANCE_USER               started as root, with a train_dir of root's and no PUID: the user
#                                to run as instead of root (default cifar, the image's user;
#                                natively, where there is no such user, root stays root)
#   PYTHON                       the interpreter (default: .venv/bin/python beside this script,
#                                else python3)
#   APPLIANCE_SUPERVISOR_SOCKET  supervisord's control socket (default below); `health` and
#                                `supervisorctl` find supervisord through it, and its password
#                                in the file beside it (SOCKET.password)
# Exported for app/runtime/supervisord.conf: APPLIANCE_HOME (this script's folder), PYTHON, PYTHONPATH,
# APPLIANCE_SUPERVISOR_PASSWORD, and APPLIANCE_ARGUMENTS (the appliance's arguments, quoted for
# supervisord, which splits a command as a POSIX shell does).
#
# Exit status (app/exit_codes.py): 2 (BAD_INPUT) for a bad config, before anything starts;
# otherwise the program's own.
set -euo pipefail

APPLIANCE_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$APPLIANCE_HOME/.venv/bin/python" ]]; then
        PYTHON=$APPLIANCE_HOME/.venv/bin/python
    else
        PYTHON=python3
    fi
fi
# One per user (the image sets one for the whole container): two users' appliances on one machine
# each have their own, and a user's supervisorctl finds theirs. Not per TMPDIR: every shell of the
# user must find the same one.
: "${APPLIANCE_SUPERVISOR_SOCKET:=/tmp/cifar10-appliance-supervisor-$(id -u).sock}"
: "${APPLIANCE_USER:=cifar}"
# The programs run in the caller's folder, so relative paths in the config mean the same to all.
PYTHONPATH=$APPLIANCE_HOME${PYTHONPATH:+:$PYTHONPATH}
# supervisord's socket also asks for a password, made afresh at every start and kept in a file
# only the owner may read (mode 0600), for supervisorctl and the health check. The socket itself
# is 0700 already; without a password supervisord logs a false CRIT at every start.
SUPERVISOR_PASSWORD_FILE=$APPLIANCE_SUPERVISOR_SOCKET.password
APPLIANCE_SUPERVISOR_PASSWORD=$(cat "$SUPERVISOR_PASSWORD_FILE" 2> /dev/null || true)
export APPLIANCE_HOME PYTHON APPLIANCE_SUPERVISOR_SOCKET PYTHONPATH APPLIANCE_SUPERVISOR_PASSWORD

# Set by prepare when we are root: the owner of train_dir ("uid:gid") and the command prefix
# that runs a program as that owner. Both stay empty when there is no one to drop to.
owner=""
run_as_owner=()

# Validates the config (laid over by the arguments given, --config and --set), creates train_dir
# and data_dir, and when root, decides whom to run as.
prepare() {
    local resolved_config train_dir data_dir uid gid dir
    resolved_config=$("$PYTHON" -m app check-config "$@") || exit $?
    {
        read -r train_dir
        read -r data_dir
    } < <(printf '%s\n' "$resolved_config" | "$PYTHON" -c '
import sys, yaml
paths = yaml.safe_load(sys.stdin)["paths"]
print(paths["train_dir"]); print(paths["data_dir"])')

    mkdir -p "$train_dir" "$data_dir"
    if [[ $(id -u) != 0 ]]; then
        return
    fi
    uid=${PUID:-$(stat -c %u "$train_dir")}
    gid=${PGID:-$(stat -c %g "$train_dir")}
    # `docker run -v DIR:/cifar10_train` makes a missing DIR as root's: no owner to match, and
    # no reason to run the programs as root. PUID=0 still chooses root.
    if [[ $uid == 0 && -z ${PUID:-} ]] && id -u "$APPLIANCE_USER" > /dev/null 2>&1; then
        uid=$(id -u "$APPLIANCE_USER")
        gid=$(id -g "$APPLIANCE_USER")
    fi
    if [[ $uid == 0 ]]; then
        return  # root by choice (PUID=0), or natively, with no APPLIANCE_USER to run as
    fi
    owner=$uid:$gid
    run_as_owner=(setpriv --reuid="$uid" --regid="$gid" --clear-groups --)
    # A folder the owner may not write is handed over only while it holds nothing (one made just
    # now, or the image's empty /cifar10_data); one with files in it stays as its owner has it.
    for dir in "$train_dir" "$data_dir"; do
        if ! "${run_as_owner[@]}" test -w "$dir" && [[ -z $(ls -A "$dir") ]]; then
            chown "$owner" "$dir"
        fi
    done
    export HOME
    HOME=$(getent passwd "$uid" | cut -d: -f6) || HOME=/tmp
    # Checked again as the owner: root may write anywhere, the owner maybe not.
    "${run_as_owner[@]}" "$PYTHON" -m app check-config "$@" > /dev/null || {
        local status=$?
        echo "(the programs run as uid $uid, gid $gid; PUID and PGID choose others)" >&2
        exit "$status"
    }
}

# supervisord, run as the owner, reopens /dev/stdout and /dev/stderr for the programs' output.
# The pipes a container engine gives its first process belong to root, so that open would fail
# (EACCES) and every program with it: hand them to the owner. Pipes and sockets exist for this
# process alone; a terminal (`docker run -t`) only when we are the container's first process,
# never the terminal of a user who started us natively.
hand_output_to_owner() {
    local fd
    [[ -n "$owner" ]] || return 0
    for fd in 1 2; do
        if [[ -p /dev/fd/$fd || -S /dev/fd/$fd ]] || { [[ -t $fd ]] && (($$ == 1)); }; then
            chown "$owner" "/dev/fd/$fd"
        fi
    done
}

# A new supervisord password in SUPERVISOR_PASSWORD_FILE, readable by the owner alone; replacing
# the file by a rename, never writing through whatever stands at its name.
new_supervisor_password() {
    local file
    file=$(mktemp "$SUPERVISOR_PASSWORD_FILE.XXXXXX")
    head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$file"
    if [[ -n "$owner" ]]; then
        chown "$owner" "$file"
    fi
    mv -f "$file" "$SUPERVISOR_PASSWORD_FILE"
    APPLIANCE_SUPERVISOR_PASSWORD=$(cat "$SUPERVISOR_PASSWORD_FILE")
}

# How `python -m app` runs a command: "folders" for one that uses the appliance's folders (made
# first, and the command run as their owner), "caller" for one run as whoever calls; nothing for a
# word that is not a command of it. The list is app/__main__.py's own.
kind_of_command() {
    "$PYTHON" -m app --commands | awk -v word="$1" '$1 == word { print $2 }'
}

case "${1:-}" in
    -h | --help)
        exec "$PYTHON" -m app --help
        ;;
    "" | -*)
        # Arguments for the appliance as a whole, given to every program (check-config refuses
        # any that are not --config and --set, with exit 2, before anything starts).
        prepare "$@"
        hand_output_to_owner
        new_supervisor_password
        APPLIANCE_ARGUMENTS=$("$PYTHON" -c 'import shlex, sys; print(shlex.join(sys.argv[1:]))' \
            "$@")
        export APPLIANCE_ARGUMENTS
        # Prefixed like the supervised programs' lines, so that every line says whose it is.
        "${run_as_owner[@]}" "$PYTHON" -m app.runtime.prefix_output data "$PYTHON" -m app data "$@"
        exec "${run_as_owner[@]}" "$PYTHON" -m supervisor.supervisord --nodaemon \
            --configuration "$APPLIANCE_HOME/app/runtime/supervisord.conf"
        ;;
    supervisorctl)
        shift
        exec "$PYTHON" -m supervisor.supervisorctl \
            --configuration "$APPLIANCE_HOME/app/runtime/supervisord.conf" "$@"
        ;;
    *)
        case $(kind_of_command "$1") in
            folders)
                prepare
                exec "${run_as_owner[@]}" "$PYTHON" -m app "$@"
                ;;
            caller)
                exec "$PYTHON" -m app "$@"
                ;;
            *)
                exec "$@"
                ;;
        esac
        ;;
esac
