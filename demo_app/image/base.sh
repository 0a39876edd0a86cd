#!/usr/bin/env bash
# A local stand-in for python:3.11-slim, built from Debian's packages, for machines that reach Debian's
# archive but no image registry. Prints the image's name on stdout (progress goes to stderr).
#
#   demo_app/image/base.sh [ENGINE]        ENGINE: podman (default when installed) or docker
#
# Debian bookworm's python3 is 3.11, the release python:3.11-slim carries. The image is tagged with a
# hash of this script, so it is built once per machine and rebuilt only when the recipe changes; the
# engine's image store is the cache. Needs root and debootstrap (Debian's package).
set -euo pipefail

ENGINE=${1:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python-is-python3: `python` on PATH, as in python:3.11-slim. python3-venv: venv with ensurepip.
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
RECIPE=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
IMAGE=localhost/tracekit-base:${SUITE}-py3.11-${RECIPE}

if "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE: cached" >&2
  echo "$IMAGE"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base.sh: debootstrap is not installed (apt-get install debootstrap), or build with BASE=python:3.11-slim" >&2
  exit 2
fi

rootfs=$(mktemp -d /var/tmp/tracekit-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base image $IMAGE: debootstrap $SUITE (minbase + $PACKAGES) ..." >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2

# Nothing of this machine goes into the image: debootstrap copies the host's resolver and host name,
# and the mirror it was given may be a local one. The engine writes these files into every container.
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname" "$rootfs/etc/hosts"
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb http://deb.debian.org/debian $SUITE main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
# Slim, as the -slim images are: no package lists, caches, manuals or docs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*

tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >&2
echo "$IMAGE"
