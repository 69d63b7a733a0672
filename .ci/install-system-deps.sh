#!/usr/bin/env bash
# Installs, as root, every Debian package the test suite needs beyond Python.
#
# Idempotent: a package already installed is left as it is, and apt is not even asked when
# nothing is missing. Other parts of the suite add their own needs as one package per line in
# .ci/debian-packages-<topic>.txt (comments with '#'); this script installs those too.
set -euo pipefail

# What the container tests (tests/container/) need, and why:
#   podman       builds and runs the real Dockerfile as root (Debian's 4.3)
#   runc         the OCI runtime; crun fails on this machine's cgroup v1 setup
#   netavark     podman's network backend: `-p PORT:6006` from the host into the container
#   iptables     what netavark programs port forwarding with (the nf_tables flavour)
#   nftables     `nft`, to delete the tables podman's networking leaves behind
#   debootstrap  builds the Debian base image locally, since no registry can be pulled from
# Rootful podman with the kernel's overlayfs needs none of uidmap, slirp4netns, fuse-overlayfs.
container_test_packages=(podman runc netavark iptables nftables debootstrap)

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
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    echo "install-system-deps: must run as root to install: ${missing[*]}" >&2
    exit 1
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
