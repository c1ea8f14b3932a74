#!/bin/bash
# one-gluster's host probe: can this KVM host open gluster disks, and where are gluster volumes mounted?
#
# install.sh puts it among OpenNebula's KVM probes (remotes/im/kvm-probes.d/host/system/), which
# `onehost sync` pushes to every host; the monitor runs it there and its lines become host attributes:
#   GLUSTER_GFAPI="YES"          this host's QEMU opens DISK_TYPE=GLUSTER disks (libgfapi); NO: it has no
#                                gluster driver, so only DISK_TYPE=FILE disks through the FUSE mount
#   GLUSTER_QEMU="7.2.22"        the QEMU version (gluster deprecated in 9.2, gone in 11.1)
#   GLUSTER_MOUNTS="vol:/dir"    the gluster volumes mounted live here, VOLUME:MOUNT_POINT, space-separated
# which SCHED_REQUIREMENTS can ask for (share/docs/admin-guide.md). QEMU itself is asked: it opens a
# gluster URI whose glusterd socket does not exist, and says whether its gluster driver tried.
# `one-gluster host check` runs it with --details, for the findings it reports (mounts, ports, libvirtd).
set -u
export LC_ALL=C
GLUSTER_SOCKET=/nonexistent/one-gluster-probe/glusterd.socket

gfapi=UNKNOWN
if command -v qemu-img >/dev/null 2>&1; then
    answer=$(timeout 20 qemu-img info "gluster+unix:///one-gluster-probe/none?socket=$GLUSTER_SOCKET" 2>&1)
    case "$answer" in
        *"Gluster connection"*) gfapi=YES ;;     # the gluster driver ran, and found no glusterd there
        *) gfapi=NO ;;                           # "Unknown protocol", or its module failed to load
    esac
fi

qemu=""
for emulator in "qemu-system-$(uname -m)" /usr/libexec/qemu-kvm kvm qemu-img; do
    if command -v "$emulator" >/dev/null 2>&1; then
        qemu=$("$emulator" --version 2>/dev/null | sed -n '1s/^.*version \([0-9][0-9.]*\).*$/\1/p')
        [ -n "$qemu" ] && break
    fi
done

# the volfile servers a FUSE client asks, in order (mount.glusterfs gives one --volfile-server each to the
# source's host and to every backup-volfile-servers entry)
volfile_servers() {
    local cmdline pid
    for pid in $(pgrep -x glusterfs 2>/dev/null); do
        cmdline=$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null) || continue
        [ "$(printf '%s\n' "$cmdline" | tail -n 1)" = "$1" ] || continue
        printf '%s\n' "$cmdline" | sed -n 's/^--volfile-server=//p' | paste -sd, -
        return
    done
}

# live and dead gluster FUSE mounts (mount points as /proc/mounts escapes them)
mounts=() details=()
while read -r source point fstype _; do
    [ "$fstype" = fuse.glusterfs ] || continue
    volume=${source#*:}
    volume=${volume#/}
    if timeout 10 stat -f "$point" >/dev/null 2>&1; then state=live; mounts+=("$volume:$point"); else state=dead; fi
    servers=$(volfile_servers "$point")
    details+=("MOUNT=$state $source $point $(stat -c %u:%g "$point" 2>/dev/null || echo -:-) ${servers:-${source%%:*}}")
done < /proc/mounts

echo "GLUSTER_GFAPI=\"$gfapi\""
echo "GLUSTER_QEMU=\"$qemu\""
echo "GLUSTER_MOUNTS=\"${mounts[*]}\""
[ "${1:-}" = --details ] || exit 0

# --details, for `one-gluster host check`: what it needs beside the attributes
echo "QEMU_ANSWER=$(printf '%s\n' "$answer" | grep -m1 '^qemu-img:' | cut -c1-300)"
if pgrep -x libvirtd >/dev/null 2>&1 || pgrep -x virtqemud >/dev/null 2>&1; then
    echo "LIBVIRTD=running"
else
    echo "LIBVIRTD=absent"
fi
reachable() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && echo open || echo closed; }
for line in "${details[@]}"; do
    echo "$line"
    read -r _ source _ _ servers <<< "$line"
    servers=${servers//,/ }
    for server in $servers; do
        echo "PORT=glusterd $server 24007 $(reachable "$server" 24007)"
    done
    if command -v gluster >/dev/null 2>&1; then
        volume=${source#*:/}
        for server in $servers; do
            status=$(timeout 20 gluster --mode=script --remote-host="$server" volume status "${volume%%/*}" --xml \
                     2>/dev/null) || continue
            printf '%s\n' "$status" | awk -F'[<>]' '
                $2 == "hostname" {host = $3} $2 == "path" {path = $3} $2 == "port" {port = $3}
                $2 == "/node" && path ~ /^\// {print host, (port ~ /^[0-9]+$/ ? port : 0), path}' |
                while read -r host port path; do
                    if [ "$port" -gt 0 ]; then state=$(reachable "$host" "$port"); else state=offline; fi
                    echo "PORT=brick $host $port $state $host:$path"
                done
            break
        done
    fi
done
