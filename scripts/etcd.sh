#!/usr/bin/env bash
# scripts/etcd.sh — make sure an etcd server binary is installed, for the
# etcd config store's tests (admin/store, admin/store/etcdtest). Idempotent:
# does nothing when etcd is already on PATH (or at /usr/bin/etcd).
#
# The tests start their own etcd on free ports with a temporary data dir;
# this script only installs the binary and makes sure Debian's packaged
# service is not left running (or enabled) on 2379.
set -euo pipefail

log() { printf 'scripts/etcd.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_etcd() {
	if command -v etcd >/dev/null 2>&1; then
		command -v etcd
	elif [ -x /usr/bin/etcd ]; then
		echo /usr/bin/etcd
	else
		return 1
	fi
}

if bin=$(find_etcd); then
	log "etcd already installed: $bin ($("$bin" --version 2>/dev/null | head -n1 || true))"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "etcd is not installed and this is not root (and no sudo): install the Debian package etcd-server by hand"
	SUDO=sudo
fi
command -v apt-get >/dev/null 2>&1 || die "etcd is not installed and apt-get is not available: install an etcd server (3.4+) so that 'etcd' is on PATH"

# Keep the package's maintainer scripts from starting the system service:
# a policy-rc.d that answers 101 ("action forbidden") is honoured by both
# invoke-rc.d and deb-systemd-invoke. Only add one if none exists, and
# remove ours again afterwards.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=
if [ ! -e "$POLICY" ]; then
	OUR_POLICY=1
	printf '#!/bin/sh\n# temporary, from sluice scripts/etcd.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 0755 "$POLICY"
fi
cleanup() {
	if [ -n "$OUR_POLICY" ]; then $SUDO rm -f "$POLICY"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log "installing etcd-server with apt-get"
$SUDO apt-get update -q || die "apt-get update failed"
$SUDO apt-get install -y -q --no-install-recommends etcd-server || die "apt-get install etcd-server failed"

# Belt and braces: if a service got started or enabled anyway, stop and
# disable it. With systemd running use systemctl; otherwise the SysV script.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
else
	if command -v service >/dev/null 2>&1; then
		$SUDO service etcd stop >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/etcd ]; then
		$SUDO /etc/init.d/etcd stop >/dev/null 2>&1 || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		# Offline systemctl still edits the unit links (no boot-time start).
		$SUDO systemctl disable etcd >/dev/null 2>&1 || true
	fi
	if command -v update-rc.d >/dev/null 2>&1; then
		$SUDO update-rc.d etcd disable >/dev/null 2>&1 || true
	fi
fi

bin=$(find_etcd) || die "etcd-server installed but no etcd binary found on PATH or at /usr/bin/etcd"
log "installed: $bin ($("$bin" --version 2>/dev/null | head -n1 || true))"
