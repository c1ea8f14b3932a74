#!/usr/bin/env bash
# Install one-gluster on an OpenNebula front-end (Debian 12, as root).
#
#   ./install.sh                      packages, virtualenv, drivers into /var/lib/one/remotes
#   ONE_LOCATION=/opt/one ./install.sh  self-contained OpenNebula: remotes in $ONE_LOCATION/var/remotes
#
# Options:
#   --remotes DIR   where the drivers go (default: $ONE_LOCATION/var/remotes or /var/lib/one/remotes)
#   --venv DIR      the virtualenv the drivers run in (default: /usr/lib/one-gluster/venv,
#                   or $ONE_LOCATION/lib/one-gluster/venv)
#   --python PATH   use this interpreter, which already has one_gluster, instead of a virtualenv
#   --no-packages   do not install Debian packages
#   --with-lab      also install glusterfs-server, for the loopback lab volume (`one-gluster lab`, demo)
#   -h, --help      this text
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APT_PACKAGES=(glusterfs-client qemu-utils qemu-block-extra xorriso e2fsprogs xfsprogs btrfs-progs
              dosfstools python3-venv)

if [ -n "${ONE_LOCATION:-}" ]; then
    REMOTES="$ONE_LOCATION/var/remotes"
    VENV="$ONE_LOCATION/lib/one-gluster/venv"
else
    REMOTES=/var/lib/one/remotes
    VENV=/usr/lib/one-gluster/venv
fi
PYTHON=""
PACKAGES=yes

while [ $# -gt 0 ]; do
    case "$1" in
        --remotes) REMOTES=$2; shift 2 ;;
        --venv) VENV=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        --no-packages) PACKAGES=no; shift ;;
        --with-lab) APT_PACKAGES+=(glusterfs-server); shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }

if [ "$PACKAGES" = yes ]; then
    say "Installing Debian packages: ${APT_PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi

if [ -z "$PYTHON" ]; then
    say "Installing the one_gluster package into the virtualenv $VENV"
    [ -x "$VENV/bin/python3" ] || /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SRC"
    PYTHON="$VENV/bin/python3"
    mkdir -p /usr/local/bin
    ln -sfn "$VENV/bin/one-gluster" /usr/local/bin/one-gluster
fi
"$PYTHON" -c 'import one_gluster' || { echo "install.sh: $PYTHON cannot import one_gluster" >&2; exit 1; }

OWNER=root
id oneadmin >/dev/null 2>&1 && OWNER=oneadmin
for kind in datastore tm; do
    [ -d "$SRC/drivers/$kind/gluster" ] || continue
    dest="$REMOTES/$kind/gluster"
    say "Installing the $kind drivers into $dest"
    mkdir -p "$dest"
    for script in "$SRC/drivers/$kind/gluster"/*; do
        # The interpreter of the virtualenv, isolated from the caller's PYTHONPATH and user site.
        { printf '#!%s -I\n' "$PYTHON"; tail -n +2 "$script"; } > "$dest/.$(basename "$script").new"
        chmod 0755 "$dest/.$(basename "$script").new"
        mv -f "$dest/.$(basename "$script").new" "$dest/$(basename "$script")"
    done
    chown -R "$OWNER:" "$dest" 2>/dev/null || chown -R "$OWNER" "$dest"
done
say "Done. Drivers run with $PYTHON"
