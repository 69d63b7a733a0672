#!/usr/bin/env bash
# Installs, as root, every Debian package the test suite needs beyond Python.
#
# Idempotent: a package already installed is left as it is, and apt is not even asked when
# nothing is missing. Other parts of the suite add their own needs as one package per line in
# .ci/debian-packages-<topic>.txt (comments with '#'); this script installs those too.
set -euo pipefail

# What the container tests (tests/container/) need, and why:
#   docker.io    the real Docker engine (dockerd 20.10, containerd, runc), which the tests start
#                and stop themselves; its service is not started here (see below)
#   podman       builds (buildah) and runs the real Dockerfile as root (Debian's 4.3)
#   runc         the OCI runtime of both; crun fails on this machine's cgroup v1 setup
#   netavark     podman's network backend: `-p PORT:6006` from the host into the container
#   iptables     what both program port forwarding with (the nf_tables flavour)
#   nftables     `nft`, to delete the tables the engines' networking leaves behind
#   debootstrap  builds the Debian base image locally, since no registry can be pulled from
# Rootful podman with the kernel's overlayfs needs none of uidmap, slirp4netns, fuse-overlayfs.
# Docker Compose v2 and buildx are not in Debian 12: install-docker-plugins.sh, run at the end.
container_test_packages=(docker.io podman runc netavark iptables nftables debootstrap)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

wanted=("${container_test_packages[@]}")
shopt -s nullglob
for list in "$here"/debian-packages-*.txt; do
    while read -r package _; do
        [[ -z "$package" || "$package" == \#* ]] && continue
        wanted+=("$package")
    done < <(sed 's/#.*//' "$list")
done

missing=()
for package in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-system-deps: all ${#wanted[@]} Debian packages already installed"
    exec bash "$here/install-docker-plugins.sh"
fi

if [[ $EUID -ne 0 ]]; then
    echo "install-system-deps: must run as root to install: ${missing[*]}" >&2
    exit 1
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# docker.io would start the system's own dockerd (/var/lib/docker); the tests start one of their
# own and refuse to share the host with another. A policy-rc.d that denies every start, for as
# long as apt runs, unless the machine has its own.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
bash "$here/install-docker-plugins.sh"
