"""A Debian base image made here, since no registry can be pulled from.

debootstrap builds a minimal Debian (the minbase variant: essential packages and apt) from the
mirror apt already uses, and the root filesystem is tarred for `podman import`. The tarball is
kept in a cache folder between runs (debootstrap takes most of a minute); CI, starting from
scratch, builds it the first time.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

# The release of the Dockerfile's default base image, debian:bookworm-slim.
SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
CACHE_DIR = Path(os.environ.get("APPLIANCE_TEST_CACHE_DIR", "/var/cache/cifar10-appliance-tests"))
# Old enough that the Dockerfile's `apt-get install` would fetch much newer packages anyway.
CACHE_MAX_AGE_SECS = 7 * 24 * 3600

# What a container image does without, as debian:*-slim does: downloaded package files and lists
# (the Dockerfile runs apt-get update), and host files debootstrap copied in.
LEFT_OUT = ["var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "etc/hostname"]


def debian_mirror(suite: str = SUITE) -> str:
    """The Debian mirror apt is configured with for `suite` (main), else deb.debian.org.

    apt's sources may hold other vendors' repositories too; Debian's own is the one whose suite
    is exactly `suite` with the main component. Both the deb822 format (*.sources, Debian 12's
    default) and the one-line format (sources.list) are read."""
    if mirror := os.environ.get("APPLIANCE_TEST_DEBIAN_MIRROR"):
        return mirror
    sources = Path("/etc/apt")
    for path in sorted(sources.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, flags=re.MULTILINE))
            if (suite in fields.get("Suites", "").split()
                    and "main" in fields.get("Components", "").split()
                    and "deb" in fields.get("Types", "").split()):
                return fields["URIs"].split()[0]
    for path in [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()  # drop [options]
            if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                return words[1]
    return FALLBACK_MIRROR


def cached_tarball(suite: str = SUITE) -> Path | None:
    """The cached root filesystem tarball of `suite`, if there is one young enough."""
    cached = CACHE_DIR / f"debian-{suite}-minbase.tar"
    if cached.is_file() and time.time() - cached.stat().st_mtime < CACHE_MAX_AGE_SECS:
        return cached
    return None


def rootfs_tarball(work_dir: Path, suite: str = SUITE) -> Path:
    """A tarball of a minbase `suite` root filesystem: the cached one if fresh, else a new one
    (cached for the next run when the cache folder is writable)."""
    if cached := cached_tarball(suite):
        return cached

    rootfs = work_dir / f"{suite}-rootfs"
    subprocess.run(["debootstrap", "--variant=minbase", suite, rootfs, debian_mirror(suite)],
                   check=True, capture_output=True, text=True, timeout=900)
    for pattern in LEFT_OUT:
        for path in rootfs.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    (rootfs / "etc/resolv.conf").write_text("")  # the engine writes the container's own

    name = f"debian-{suite}-minbase.tar"
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        destination = CACHE_DIR / name
    except OSError:  # no cache on this machine: the tarball lives as long as the session
        destination = work_dir / name
    partial = destination.with_suffix(f".partial-{os.getpid()}")
    subprocess.run(["tar", "--numeric-owner", "--create", "--file", partial,
                    "--directory", rootfs, "."], check=True, timeout=300)
    partial.replace(destination)  # atomic: a run killed halfway leaves no broken cache
    shutil.rmtree(rootfs)
    return destination
