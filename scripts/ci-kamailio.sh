#!/usr/bin/env bash
# Installs the real SIP parts that drivers/local and its integration tests use:
# Kamailio (P-CSCF / S-CSCF stand-ins) and SIPp (callers and callees), from the
# Debian packages. Nothing is started: the packages' services stay disabled
# and drivers/local launches every instance itself on its own loopback address.
#
# Also dig (dnsutils), to look at the DCs' discovery DNS servers by hand
# (docs/sip.md: `dig @127.10.0.53 _sip._udp.scscf.dc0.ims.local SRV`).
#
# Usage: scripts/ci-kamailio.sh        (as root, or with sudo available)
# Idempotent: exits at once when kamailio, sipp and dig are already on PATH.
set -euo pipefail

# http_client.so (kamailio-utils-modules): the P-CSCF's media hook (issue 13)
if command -v kamailio >/dev/null 2>&1 && command -v sipp >/dev/null 2>&1 && command -v dig >/dev/null 2>&1 &&
  ls /usr/lib/*/kamailio/modules/http_client.so >/dev/null 2>&1; then
  echo "ci-kamailio: $(kamailio -v 2>/dev/null | sed -n 1p); sipp present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ci-kamailio: need root or sudo to install packages" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt user may hold the lock (parallel installs on shared machines): wait for it.
APT=(apt-get -o DPkg::Lock::Timeout=600)
$SUDO "${APT[@]}" update -qq
# kamailio-extra-modules is not needed by the templates (jsonrpcs, dialog, dispatcher
# and tm are in the base package) but matches the reference install.
$SUDO "${APT[@]}" install -y -q --no-install-recommends kamailio kamailio-extra-modules kamailio-utils-modules sip-tester dnsutils

# The Debian unit may be enabled by the package; the project starts its own instances.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now kamailio >/dev/null 2>&1 || true
fi

kamailio -v | sed -n 1p
sipp -v 2>&1 | grep -m1 -i sipp || true
