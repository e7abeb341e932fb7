#!/usr/bin/env bash
# Installs the real data-plane parts that drivers/ovs and drivers/netns use:
# Open vSwitch (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl; userspace
# datapath only, no kernel module needed), ethtool (TX checksum offload off on
# veth ends), nftables (the firewall and IDS stages) and iproute2 (namespaces,
# veths). Nothing is started: the Debian service stays disabled and the tests
# and `ims-orch serve --driver local` start private daemons in a run dir.
#
# Usage: scripts/ci-ovs.sh        (as root, or with sudo available)
# Idempotent: exits at once when every tool is on PATH.
set -euo pipefail

need=(ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovsdb-tool ethtool nft ip)
missing=0
for t in "${need[@]}"; do
  command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$t" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 0 ]; then
  echo "ci-ovs: $(ovs-vsctl --version | sed -n 1p); nft $(nft --version | awk '{print $2}'); ethtool present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ci-ovs: need root or sudo to install packages" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600)
$SUDO "${APT[@]}" update -qq
$SUDO "${APT[@]}" install -y -q --no-install-recommends openvswitch-switch ethtool nftables iproute2

# The package may enable and start its own service; the project starts private daemons.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now openvswitch-switch >/dev/null 2>&1 || true
fi

ovs-vsctl --version | sed -n 1p
