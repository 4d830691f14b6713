#!/usr/bin/env bash
# scripts/prometheus.sh — make sure the prometheus server and promtool are
# installed, for the metrics tests (metrics: `promtool check metrics` on the
# export endpoint; e2e: a real Prometheus scraping sluice). Idempotent: does
# nothing when both are already on PATH.
#
# The tests start their own prometheus on a free port with a temporary
# config and storage dir; this script only installs the binaries and makes
# sure Debian's packaged service is not left running (or enabled) on 9090.
set -euo pipefail

log() { printf 'scripts/prometheus.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have() {
	command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

if have; then
	log "prometheus already installed: $(command -v prometheus) ($(prometheus --version 2>&1 | head -n1 || true))"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "prometheus is not installed and this is not root (and no sudo): install the Debian package prometheus by hand"
	SUDO=sudo
fi
command -v apt-get >/dev/null 2>&1 || die "prometheus is not installed and apt-get is not available: install prometheus (2.x+) so that 'prometheus' and 'promtool' are on PATH"

# Keep the package's maintainer scripts from starting the system service:
# a policy-rc.d that answers 101 ("action forbidden") is honoured by both
# invoke-rc.d and deb-systemd-invoke. Only add one if none exists, and
# remove ours again afterwards.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=
if [ ! -e "$POLICY" ]; then
	OUR_POLICY=1
	printf '#!/bin/sh\n# temporary, from sluice scripts/prometheus.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 0755 "$POLICY"
fi
cleanup() {
	if [ -n "$OUR_POLICY" ]; then $SUDO rm -f "$POLICY"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log "installing prometheus with apt-get"
$SUDO apt-get update -q || die "apt-get update failed"
# --no-install-recommends: no node exporter, no web console libraries.
$SUDO apt-get install -y -q --no-install-recommends prometheus || die "apt-get install prometheus failed"

# Belt and braces: if a service got started or enabled anyway, stop and
# disable it. With systemd running use systemctl; otherwise the SysV script.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
else
	if command -v service >/dev/null 2>&1; then
		$SUDO service prometheus stop >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/prometheus ]; then
		$SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		# Offline systemctl still edits the unit links (no boot-time start).
		$SUDO systemctl disable prometheus >/dev/null 2>&1 || true
	fi
	if command -v update-rc.d >/dev/null 2>&1; then
		$SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
	fi
fi

have || die "prometheus installed but 'prometheus' or 'promtool' is not on PATH"
log "installed: $(command -v prometheus) ($(prometheus --version 2>&1 | head -n1 || true)), $(command -v promtool)"
