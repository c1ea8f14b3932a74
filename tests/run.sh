#!/usr/bin/env bash
# Run the test suite on a Debian 12 machine as root: installs what the tests need (Debian
# packages, a virtualenv in .venv with the project), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(glusterfs-server glusterfs-client qemu-utils qemu-block-extra xorriso e2fsprogs xfsprogs
          btrfs-progs dosfstools python3-venv openssl strace
          # a real libvirtd for the end-to-end test of the gluster network disks
          libvirt-clients libvirt-daemon-system libvirt-daemon-driver-qemu
          libvirt-daemon-driver-storage-gluster qemu-system-x86 libxml2-utils)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    # Debian's interpreter, as install.sh uses: the drivers also run as oneadmin, who must reach it
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[test]"
exec .venv/bin/python -m pytest -q -rs "$@"
