#!/usr/bin/env bash
# One setup path for a fresh Debian 12 machine, run as root. Idempotent: quick when
# everything is in place already.
#   - Debian packages the lab and the controller need (and systemd, whose
#     systemd-analyze and systemd-sysusers check packaging/systemd)
#   - users and groups libvirtd insists on
#   - npm packages (npm ci when node_modules is missing or older than the lock file)
#   - the lab guest image, in a cache directory outside the repository
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) != 0 ]]; then
  echo "setup: must run as root (it installs Debian packages and runs libvirt hosts)" >&2
  exit 1
fi

packages=(qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  busybox-static iproute2 iputils-ping fping cpio redis-server perl openssl openssh-server
  chromium fonts-ipafont-gothic prometheus systemd ipmitool openipmi)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  # Packages such as redis-server and openssh-server would start system services on install;
  # the lab and the tests start their own, on their own addresses, and nothing else.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# apt-get download (the guest kernel) needs a package index even when nothing was missing.
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
  apt-get update -q >/dev/null
fi

# libvirtd looks the qemu user up before it reads qemu.conf.
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
  useradd --system --gid libvirt-qemu --groups kvm --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
# Mount points that each lab host binds its own directories over.
mkdir -p /run/libvirt /var/lib/libvirt /etc/libvirt /var/log/libvirt /var/cache/libvirt

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash lab/guest/build-image.sh
