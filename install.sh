#!/usr/bin/env bash
# Install one-gluster on an OpenNebula front-end (Debian 12, as root). Safe to run again.
#
#   ./install.sh                         packages, virtualenv, drivers, oned.conf and vmm_execrc
#   ./install.sh --dry-run               show every change (configuration files as a diff), change nothing
#   ./install.sh --uninstall             put everything back (Debian packages stay)
#   ONE_LOCATION=/opt/one ./install.sh   a self-contained OpenNebula under $ONE_LOCATION
#
# Options:
#   --remotes DIR     drivers go to DIR/{datastore,tm}/gluster, the host probe to
#                     DIR/im/kvm-probes.d/host/system (default /var/lib/one/remotes, or $ONE_LOCATION/var/remotes)
#   --oned-conf F     default /etc/one/oned.conf, or $ONE_LOCATION/etc/oned.conf
#   --vmm-execrc F    default /etc/one/vmm_exec/vmm_execrc, or $ONE_LOCATION/etc/vmm_exec/vmm_execrc
#   --venv DIR        the drivers' virtualenv (default /usr/lib/one-gluster/venv,
#                     or $ONE_LOCATION/lib/one-gluster/venv)
#   --python PATH     use this interpreter, which already has one_gluster, instead of a virtualenv
#   --no-packages     do not install Debian packages
#   --with-lab        also install glusterfs-server, for the loopback lab volume (`one-gluster lab`, demo)
#   --dry-run         show what would change
#   --uninstall       remove the drivers, the virtualenv, the command and the registration
#   -h, --help        this text
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APT_PACKAGES=(glusterfs-client glusterfs-cli qemu-utils qemu-block-extra xorriso e2fsprogs xfsprogs
              btrfs-progs dosfstools python3-venv)

if [ -n "${ONE_LOCATION:-}" ]; then
    REMOTES=$ONE_LOCATION/var/remotes ETC=$ONE_LOCATION/etc VENV=$ONE_LOCATION/lib/one-gluster/venv
    SHARE=$ONE_LOCATION/share/one-gluster BIN=$ONE_LOCATION/bin
else
    REMOTES=/var/lib/one/remotes ETC=/etc/one VENV=/usr/lib/one-gluster/venv
    SHARE=/usr/share/one-gluster BIN=/usr/local/bin
fi
PROBE_SRC=$SRC/src/one_gluster/admin/host_probe.sh       # `onehost sync` pushes it to every KVM host
ONED_CONF=$ETC/oned.conf
VMM_EXECRC=$ETC/vmm_exec/vmm_execrc
PYTHON="" PACKAGES=yes DRY_RUN=no UNINSTALL=no

while [ $# -gt 0 ]; do
    case "$1" in
        --remotes) REMOTES=$2; shift 2 ;;
        --oned-conf) ONED_CONF=$2; shift 2 ;;
        --vmm-execrc) VMM_EXECRC=$2; shift 2 ;;
        --venv) VENV=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        --no-packages) PACKAGES=no; shift ;;
        --with-lab) APT_PACKAGES+=(glusterfs-server); shift ;;
        --dry-run) DRY_RUN=yes; shift ;;
        --uninstall) UNINSTALL=yes; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
act() { if [ "$DRY_RUN" = yes ]; then printf '    would: %s\n' "$*"; else "$@"; fi; }
CHANGED=no

# The registration editor needs only the standard library: it runs from the source tree with the
# system's python3, also before the virtualenv exists and in --dry-run.
registration() {
    local args=("$@")
    [ "$DRY_RUN" = yes ] && args+=(--dry-run)
    PYTHONPATH="$SRC/src" /usr/bin/python3 -s -m one_gluster.admin.registration "${args[@]}"
}

configure() {   # register | unregister
    if [ ! -f "$ONED_CONF" ]; then
        say "No OpenNebula configuration at $ONED_CONF: registration skipped (give --oned-conf)"
        return
    fi
    local files=(--oned-conf "$ONED_CONF")
    [ -f "$VMM_EXECRC" ] && files+=(--vmm-execrc "$VMM_EXECRC")
    say "${1^}ing the gluster drivers in $ONED_CONF${files[3]:+ and $VMM_EXECRC}"
    local out
    out=$(registration "$1" "${files[@]}" --fragment "$SRC/share/opennebula/oned-gluster.conf")
    printf '%s\n' "$out" | sed 's/^/    /'
    grep -qv ': unchanged$' <<<"$out" && CHANGED=yes || true
}

# Drivers run with `-IS`: isolated from the caller's environment, and without the `site` module,
# whose start-up is ~2.5 ms of every call (a tenth of what `monitor` may take). Each driver lists
# its interpreter's import path beyond the standard library instead (site-packages, editable
# installs), as the interpreter computes it now.
driver_header() {   # INTERPRETER: the two lines that replace a driver's `#!/usr/bin/env python3`
    local path='[]'
    if [ -x "$1" ]; then
        path=$("$1" -I -c 'import subprocess, sys
bare = subprocess.run([sys.executable, "-IS", "-c", "import sys; print(*sys.path, sep=chr(10))"],
                      capture_output=True, text=True, check=True).stdout.splitlines()
print([p for p in sys.path if p and p not in bare])')
    fi
    printf '#!%s -IS\nimport sys; sys.path += %s  # install.sh: what site would add\n' "$1" "$path"
}

install_file() {   # SOURCE DEST MODE [header]: replace DEST only when its content changes
    local new
    new=$(mktemp)
    if [ -n "${4:-}" ]; then { printf '%s\n' "$4"; tail -n +2 "$1"; } > "$new"; else cat "$1" > "$new"; fi
    if cmp -s "$new" "$2"; then rm -f "$new"; return; fi
    CHANGED=yes
    if [ "$DRY_RUN" = yes ]; then
        printf '    would %s %s\n' "$([ -e "$2" ] && echo update || echo install)" "$2"
        rm -f "$new"
        return
    fi
    mkdir -p "$(dirname "$2")"
    chmod "$3" "$new"
    mv -f "$new" "$2.one-gluster-new"
    mv -f "$2.one-gluster-new" "$2"
}

owner() { id oneadmin >/dev/null 2>&1 && echo oneadmin:oneadmin || echo root:root; }
probe_path() { echo "$REMOTES/im/kvm-probes.d/host/system/one-gluster.sh"; }

uninstall() {
    configure unregister
    for path in "$REMOTES/datastore/gluster" "$REMOTES/tm/gluster" "$(probe_path)" "$SHARE" "$VENV" \
                "$BIN/one-gluster"; do
        if [ -e "$path" ] || [ -L "$path" ]; then
            say "Removing $path"
            act rm -rf "$path"
            CHANGED=yes
        fi
    done
    say "Debian packages stay installed: ${APT_PACKAGES[*]}"
}

install() {
    if [ "$PACKAGES" = yes ]; then
        local missing=()
        for p in "${APT_PACKAGES[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            say "Installing Debian packages: ${missing[*]}"
            CHANGED=yes
            export DEBIAN_FRONTEND=noninteractive
            act apt-get update -qq
            act apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
    fi
    if [ -z "$PYTHON" ]; then
        say "Installing the one_gluster package into the virtualenv $VENV"
        [ -x "$VENV/bin/python3" ] || act /usr/bin/python3 -m venv "$VENV"
        act "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SRC"
        PYTHON=$VENV/bin/python3
        if [ "$(readlink "$BIN/one-gluster" 2>/dev/null)" != "$VENV/bin/one-gluster" ]; then
            act mkdir -p "$BIN"
            act ln -sfn "$VENV/bin/one-gluster" "$BIN/one-gluster"
        fi
    fi
    local header
    header=$(driver_header "$PYTHON")
    for kind in datastore tm; do
        say "Installing the $kind drivers into $REMOTES/$kind/gluster"
        for script in "$SRC/drivers/$kind/gluster"/*; do
            install_file "$script" "$REMOTES/$kind/gluster/$(basename "$script")" 0755 "$header"
        done
        [ "$DRY_RUN" = yes ] || chown -R "$(owner)" "$REMOTES/$kind/gluster"
    done
    say "Installing the host probe as $(probe_path) (run onehost sync --force to push it to the hosts)"
    install_file "$PROBE_SRC" "$(probe_path)" 0755
    [ "$DRY_RUN" = yes ] || chown "$(owner)" "$(probe_path)"
    say "Installing templates and guides into $SHARE"
    while IFS= read -r -d '' file; do
        install_file "$file" "$SHARE/${file#"$SRC/share/"}" 0644
    done < <(find "$SRC/share" -type f -print0 | sort -z)
    configure register
}

verify() {
    [ "$DRY_RUN" = yes ] && return
    say "Verifying"
    local bad=0
    for kind in datastore tm; do
        for script in "$SRC/drivers/$kind/gluster"/*; do
            [ -x "$REMOTES/$kind/gluster/$(basename "$script")" ] || { echo "    missing: $REMOTES/$kind/gluster/$(basename "$script")"; bad=1; }
        done
    done
    [ -x "$(probe_path)" ] || { echo "    missing: $(probe_path)"; bad=1; }
    local interpreter path
    interpreter=$(head -1 "$REMOTES/tm/gluster/clone" | sed 's/^#!//; s/ .*$//')
    path=$(sed -n 2p "$REMOTES/tm/gluster/clone")
    if "$interpreter" -IS -c "$path; import one_gluster.driver, pyone, lxml, sh" 2>/dev/null; then
        echo "    drivers run with $interpreter, which imports one_gluster, pyone, lxml and sh"
    else
        echo "    $interpreter cannot import one_gluster and its dependencies"; bad=1
    fi
    if [ -f "$ONED_CONF" ]; then
        local files=(--oned-conf "$ONED_CONF")
        [ -f "$VMM_EXECRC" ] && files+=(--vmm-execrc "$VMM_EXECRC")
        registration verify "${files[@]}" | sed 's/^/    /' || bad=1
    fi
    return $bad
}

if [ "$UNINSTALL" = yes ]; then
    uninstall
else
    install
    verify || { echo "install.sh: the installation is not complete (see above)" >&2; exit 1; }
fi

if [ "$DRY_RUN" = yes ]; then
    say "Dry run: nothing was changed"
elif [ "$CHANGED" = yes ] && [ -f "$ONED_CONF" ]; then
    say "Left to do: restart oned (systemctl restart opennebula), then push the drivers to the hosts"
    echo "    (su - oneadmin -c 'onehost sync --force')"
elif [ "$CHANGED" = yes ]; then
    say "Done"
else
    say "Done: nothing changed"
fi
