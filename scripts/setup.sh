#!/usr/bin/env bash
# Installs what hashd's demo, tests and benchmarks need on a fresh Debian/Ubuntu machine (as root):
# Debian packages (systemd, nix, sshd, load generators, chromium), bun from the npm registry when it
# is missing, the project's node_modules, and the compiled binary. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (the sandbox hosts need namespaces and mounts)" >&2
  exit 1
fi

# nix-setup-systemd: the nix-daemon units and the nixbld group and users that every sandbox host's
# nix-daemon uses (both seen through the host's overlay root)
packages=(systemd nix-bin nix-setup-systemd openssh-server openssh-client iproute2 util-linux python3 curl ca-certificates
  nginx wrk hyperfine serf nftables chromium openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The machine's own sshd and nginx stay stopped; tests run their own inside sandbox hosts.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

if ! command -v bun >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "setup.sh: installing bun from the npm registry"
  npm install -g --allow-scripts=bun bun >/dev/null 2>&1 || npm install -g bun >/dev/null
fi

bun install --frozen-lockfile >/dev/null
bun run build >/dev/null
echo "setup.sh: ready ($(bun --version), $(nix --version), $(systemctl --version | head -n1))"
