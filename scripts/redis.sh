#!/usr/bin/env bash
# scripts/redis.sh — make sure a redis-server binary is installed, for the
# limit-count plugin's redis policy tests (plugin/limitcount,
# internal/redistest, e2e). Idempotent: does nothing when redis-server is
# already on PATH (or at /usr/bin/redis-server).
#
# The tests start their own redis-server on a free 127.0.0.1 port without
# persistence; this script only installs the binary and makes sure Debian's
# packaged service is not left running (or enabled) on 6379.
set -euo pipefail

log() { printf 'scripts/redis.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_redis() {
	if command -v redis-server >/dev/null 2>&1; then
		command -v redis-server
	elif [ -x /usr/bin/redis-server ]; then
		echo /usr/bin/redis-server
	else
		return 1
	fi
}

if bin=$(find_redis); then
	log "redis-server already installed: $bin ($("$bin" --version 2>/dev/null | head -n1 || true))"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "redis-server is not installed and this is not root (and no sudo): install the Debian package redis-server by hand"
	SUDO=sudo
fi
command -v apt-get >/dev/null 2>&1 || die "redis-server is not installed and apt-get is not available: install Redis (6.2+) so that 'redis-server' is on PATH"

# Keep the package's maintainer scripts from starting the system service:
# a policy-rc.d that answers 101 ("action forbidden") is honoured by both
# invoke-rc.d and deb-systemd-invoke. Only add one if none exists, and
# remove ours again afterwards.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=
if [ ! -e "$POLICY" ]; then
	OUR_POLICY=1
	printf '#!/bin/sh\n# temporary, from sluice scripts/redis.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 0755 "$POLICY"
fi
cleanup() {
	if [ -n "$OUR_POLICY" ]; then $SUDO rm -f "$POLICY"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log "installing redis-server with apt-get"
$SUDO apt-get update -q || die "apt-get update failed"
$SUDO apt-get install -y -q --no-install-recommends redis-server || die "apt-get install redis-server failed"

# Belt and braces: if a service got started or enabled anyway, stop and
# disable it. With systemd running use systemctl; otherwise the SysV script.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
else
	if command -v service >/dev/null 2>&1; then
		$SUDO service redis-server stop >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/redis-server ]; then
		$SUDO /etc/init.d/redis-server stop >/dev/null 2>&1 || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		# Offline systemctl still edits the unit links (no boot-time start).
		$SUDO systemctl disable redis-server >/dev/null 2>&1 || true
	fi
	if command -v update-rc.d >/dev/null 2>&1; then
		$SUDO update-rc.d redis-server disable >/dev/null 2>&1 || true
	fi
fi

bin=$(find_redis) || die "redis-server installed but no redis-server binary found on PATH or at /usr/bin/redis-server"
log "installed: $bin ($("$bin" --version 2>/dev/null | head -n1 || true))"
