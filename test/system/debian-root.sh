#!/usr/bin/env bash
# Makes (or reuses) a clean Debian 12 root for the system test and prints the path of its
# tarball. The root has systemd as init and the lab's tools (wireguard-go, wg-quick, curl),
# no nodejs, and nftables' .deb files in its apt cache, not installed: installing the
# tunnelgate .deb must pull nftables in through its Depends.
#
# Cached under $TUNNELGATE_ROOT_CACHE (default /var/cache/tunnelgate-system-test, outside
# the repository), keyed by a hash of this script, so a repeated local run skips
# debootstrap (~50 s). CI starts from an empty cache.
set -euo pipefail

INCLUDE=systemd,systemd-sysv,dbus,iproute2,wireguard-tools,wireguard-go,curl,ca-certificates
# procps comes with the .deb (Depends), but apt needs its .deb files in the cache.
DOWNLOAD_ONLY=(nftables procps)
SUITE=bookworm

cache=${TUNNELGATE_ROOT_CACHE:-/var/cache/tunnelgate-system-test}
key=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
tarball=$cache/debian12-$key.tar
if [ -f "$tarball" ]; then echo "$tarball"; exit 0; fi

# The mirror the host's apt uses (deb822 or one-line format).
mirror=$(grep -h -m1 -oE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}')
[ -n "$mirror" ] || mirror=$(grep -h -m1 -oE '^deb +[^ ]+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}')
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$mirror" >&2
# apt lists and the .deb files the package install will need, so that a test run can
# install tunnelgate's .deb with apt without the network.
chroot "$work/root" apt-get update -q >&2
chroot "$work/root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --download-only "${DOWNLOAD_ONLY[@]}" >&2
# Stock Debian: nothing in the root refers to the build host.
: > "$work/root/etc/machine-id"
tar -C "$work/root" -cf "$work/root.tar" .
mv "$work/root.tar" "$tarball"
echo "$tarball"
