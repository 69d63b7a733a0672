#!/usr/bin/env bash
# The GPU check: install the appliance's pinned requirements with TensorFlow's CUDA flavour, then
# measure every model's training speed on the one GPU (float32, bfloat16 and float16, without and
# with XLA) and run train and eval side by side for a minute to show neither runs out of memory.
# About 5 minutes on one GPU once the packages are there (bench/RESULTS.md has the figures).
#
#   bench/gpu_check.sh [--wheels DIR] [--skip-install] [--venv DIR] [--allow-cpu]
#                      [--seconds-per-config S] [--together-secs S] [--recipes tutorial,fast]
#
#   --wheels DIR      install offline from the wheels in DIR (pip --no-index --find-links DIR);
#                     fill it on a machine with internet:
#                       pip download -d DIR -r requirements.txt 'tensorflow[and-cuda]'
#   --skip-install    use the venv as it is
#   --venv DIR        where to install (default: ~/.cache/cifar10-appliance/gpu-venv)
#   --allow-cpu       measure even without a GPU (to check this script on a CPU machine)
#   the other options go to `python -m bench.gpu_check` (see its --help)
#
# Environment: PYTHON, the interpreter the venv is made from (default python3; 3.10 to 3.12).
# Exit status: 0 passed, 1 a measurement failed, 2 nothing could be measured (no TensorFlow,
# no GPU).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/cifar10-appliance/gpu-venv
WHEELS=""
INSTALL=1
CHECK_ARGS=()

while (($#)); do
    case "$1" in
        --wheels) WHEELS=$(cd "$2" && pwd); shift 2 ;;
        --skip-install) INSTALL=0; shift ;;
        --venv) VENV=$2; shift 2 ;;
        --allow-cpu) CHECK_ARGS+=(--allow-cpu); shift ;;
        --seconds-per-config | --together-secs | --recipes) CHECK_ARGS+=("$1" "$2"); shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n== %s\n' "$*"; }

tensorflow_importable() {
    "$VENV/bin/python" -c 'import tensorflow' > /dev/null 2>&1
}

# Asks the index for one small pin of ours, once, quickly: the difference between "the index is
# unreachable" and "a pin does not exist" is worth saying plainly.
index_reachable() {
    "$VENV/bin/python" -m pip download --quiet --no-deps --dest "$(mktemp -d)" \
        --timeout 10 --retries 0 "$(grep -m1 '^pyyaml==' "$REPO/requirements.txt")" > /dev/null 2>&1
}

install() {
    if [[ ! -x $VENV/bin/python ]]; then
        say "creating $VENV with $("$PYTHON" --version 2>&1)"
        "$PYTHON" -m venv "$VENV"
    fi
    local pip=("$VENV/bin/python" -m pip install --disable-pip-version-check
               -r "$REPO/requirements.txt" 'tensorflow[and-cuda]')
    if [[ -n $WHEELS ]]; then
        say "installing offline from $WHEELS"
        "${pip[@]}" --no-index --find-links "$WHEELS" && return 0
        echo "gpu_check.sh: the wheels in $WHEELS do not satisfy requirements.txt +" \
             "tensorflow[and-cuda] (see pip's message above)" >&2
    elif index_reachable; then
        say "installing requirements.txt + tensorflow[and-cuda] from the package index"
        "${pip[@]}" && return 0
        echo "gpu_check.sh: pip could not install the pinned requirements (see above)" >&2
    else
        echo "gpu_check.sh: pip cannot reach the package index from this machine (offline?)." \
             "Pass --wheels DIR with wheels downloaded elsewhere, or --skip-install" >&2
    fi
    if tensorflow_importable; then
        echo "gpu_check.sh: going on with the TensorFlow already in $VENV" >&2
        return 0
    fi
    return 2
}

say "the machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
    || echo "nvidia-smi: not found or no GPU"

if ((INSTALL)); then
    install || { echo "gpu_check.sh: no TensorFlow to measure with" >&2; exit 2; }
elif ! tensorflow_importable; then
    echo "gpu_check.sh: --skip-install, but $VENV has no TensorFlow" >&2
    exit 2
fi

say "measuring (python -m bench.gpu_check ${CHECK_ARGS[*]})"
cd "$REPO"
PYTHONPATH=$REPO TF_CPP_MIN_LOG_LEVEL=2 \
    exec "$VENV/bin/python" -m bench.gpu_check "${CHECK_ARGS[@]}"
