#!/usr/bin/env bash
# Fetches the docker CLI's Compose v2 and buildx plugins into a cache folder of their own, for the
# container tests (tests/harness/docker_engine.py links them into its DOCKER_CONFIG).
#
#   .ci/install-docker-plugins.sh        # idempotent: does nothing when both are there and run
#
# Debian 12 has neither (its docker-compose is the old Python 1.29, which has no `up --build`
# with BuildKit secrets): both come from Debian 13 (trixie), where they are static Go binaries
# that need only libc. They are downloaded with apt-get, with sources, lists and a package cache
# of this script's own: the system's apt sources, lists and packages stay as they were.
#
# Environment:
#   APPLIANCE_TEST_CACHE_DIR      the tests' cache (default /var/cache/cifar10-appliance-tests);
#                                 the plugins land in its docker-cli-plugins/
#   APPLIANCE_TEST_DEBIAN_MIRROR  the Debian mirror (default: the one apt uses for bookworm)
#
# To use them in your own shell too: export DOCKER_CONFIG=~/.docker and copy (or link) the two
# files into ~/.docker/cli-plugins/.
set -euo pipefail

cache=${APPLIANCE_TEST_CACHE_DIR:-/var/cache/cifar10-appliance-tests}
plugins=$cache/docker-cli-plugins
apt_dir=$cache/trixie-apt
suite=trixie
# Debian package -> the plugin it ships.
declare -A plugin_of=([docker-compose]=docker-compose [docker-buildx]=docker-buildx)

works() {
    [[ -x $plugins/$1 ]] && "$plugins/$1" docker-cli-plugin-metadata > /dev/null 2>&1
}

missing=()
for package in "${!plugin_of[@]}"; do
    works "${plugin_of[$package]}" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    echo "install-docker-plugins: compose and buildx already in $plugins"
    exit 0
fi

# The mirror apt already uses for Debian's main archive (deb822 or one-line sources), else
# deb.debian.org; the same choice as tests/harness/debian_base.py.
mirror=${APPLIANCE_TEST_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." \
        && python3 -c 'from tests.harness.debian_base import debian_mirror; print(debian_mirror())' \
        2> /dev/null) || mirror=http://deb.debian.org/debian
fi

mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$plugins"
cat > "$apt_dir/sources/trixie.sources" << EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_options=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/sources"
             -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
             -qq)

echo "install-docker-plugins: fetching ${missing[*]} from Debian $suite ($mirror)"
apt-get "${apt_options[@]}" update
work=$(mktemp -d)
chmod 0755 "$work"  # apt-get download writes as its own user, _apt
trap 'rm -rf "$work"' EXIT
for package in "${missing[@]}"; do
    (cd "$work" && apt-get "${apt_options[@]}" download "$package")
    dpkg -x "$work/${package}"_*.deb "$work/$package"
    plugin=${plugin_of[$package]}
    install -m 0755 "$work/$package/usr/libexec/docker/cli-plugins/$plugin" "$plugins/$plugin.new"
    mv -f "$plugins/$plugin.new" "$plugins/$plugin"
    works "$plugin" || { echo "install-docker-plugins: $plugins/$plugin does not run" >&2; exit 1; }
    echo "install-docker-plugins: $plugin $("$plugins/$plugin" docker-cli-plugin-metadata |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Version"])')"
done
