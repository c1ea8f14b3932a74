"""`one-gluster`: the admin command. Exit 0 when all is well, 1 with warnings, 2 on failure."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional, Sequence

from one_gluster.admin.lab import DEFAULT_HOST, DEFAULT_ROOT, Lab
from one_gluster.core.errors import DriverError


def _one_path(packaged: str, self_contained: str) -> str:
    """A path of OpenNebula's layout: packaged, or under $ONE_LOCATION for a self-contained install."""
    location = os.environ.get("ONE_LOCATION")
    return f"{location}/{self_contained}" if location else packaged


def _remotes_default() -> str:
    return _one_path("/var/lib/one/remotes", "var/remotes")


def _lab(args: argparse.Namespace) -> Any:
    """The single-server lab, or with --servers the pool lab (its own directory under DIR)."""
    if args.servers > 1:
        from one_gluster.admin.pool import Pool

        return Pool(root=os.path.join(args.dir, "pool"), volume=args.volume, servers=args.servers, virt=args.virt,
                    mount_point=args.mount or "", stop_glusterd=args.stop_glusterd)
    return Lab(root=args.dir, volume=args.volume, host=args.host, replica=args.replica,
               mount_point=args.mount or "")


def cmd_lab(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if args.action == "up":
        lab.up()
    elif args.action == "down":
        lab.down()
    status = lab.status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for key, value in status.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            print(f"{key:12} {', '.join(value) if isinstance(value, list) else value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from one_gluster.admin.demo import run_demo

    return run_demo(args.dir, args.remotes, args.image, gfapi=not args.no_gfapi, servers=args.servers,
                    stop_glusterd=args.stop_glusterd)


def cmd_disk_xml(args: argparse.Namespace) -> int:
    from lxml import etree

    from one_gluster.core.kvm_disk import disk_element, disk_name, file_disk_element
    from one_gluster.core.volume import parse_servers

    if args.file:
        element = file_disk_element(args.file, args.format, target=args.target, bus=args.bus, device=args.device)
        print(etree.tostring(element, pretty_print=True, encoding="unicode"), end="")
        return 0
    servers = parse_servers(args.host or "")
    if not servers:
        raise DriverError("give --host GLUSTER_HOST for a gluster disk, or --file PATH for a file disk")
    name = args.name or disk_name(args.volume, args.vmid, args.disk_id, args.source or "", args.clone)
    if not name or name.startswith("/"):
        raise DriverError("give --name VOL/PATH, or --volume with --vmid/--disk-id (clones) or --source")
    element = disk_element(name, servers, args.format, target=args.target, bus=args.bus, device=args.device)
    print(etree.tostring(element, pretty_print=True, encoding="unicode"), end="")
    return 0


def cmd_uri(args: argparse.Namespace) -> int:
    from one_gluster.core.kvm_disk import uri
    from one_gluster.core.volume import parse_servers

    servers = parse_servers(args.host or "")
    try:
        print(uri(args.path, servers[0] if servers else None, args.transport, args.socket))
    except ValueError as exc:
        raise DriverError(str(exc)) from None
    return 0


def _owner(text: Optional[str]) -> Optional[tuple[int, int]]:
    from one_gluster.admin.checks import oneadmin_ids

    if text is None:
        return oneadmin_ids()
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or not gid.isdigit():
        raise DriverError(f"--owner takes UID:GID in numbers, not {text!r}")
    return int(uid), int(gid)


def cmd_check(args: argparse.Namespace) -> int:
    from one_gluster.admin.checks import check
    from one_gluster.admin.report import exit_code, show

    findings = check(args.volume, args.host, _owner(args.owner))
    code = exit_code(findings)
    status = {0: "ok", 1: "warnings", 2: "failures"}[code]
    show(findings, args.json, volume=args.volume, status=status)
    if not args.json:
        counts = {s: sum(f.status == s for f in findings) for s in ("ok", "note", "warn", "fail")}
        print(f"\n{args.volume}: {status} ({counts['ok']} ok, {counts['note']} notes, "
              f"{counts['warn']} warnings, {counts['fail']} failures)")
    return code


def cmd_prepare(args: argparse.Namespace) -> int:
    from one_gluster.admin.checks import plan, prepare
    from one_gluster.admin.report import show
    from one_gluster.core.commands import quote

    owner = _owner(args.owner)
    changes = plan(args.volume, args.host, owner)
    if not args.json:
        verb = "would change" if args.dry_run else "changing"
        print(f"{args.volume}: {verb} {len(changes)} option(s)" + (":" if changes else ""))
    show(changes, args.json, volume=args.volume, dry_run=args.dry_run)
    if changes and args.dry_run and not args.json:
        pairs = [word for c in changes for word in (c.option, c.after)]
        print("\n" + quote("gluster", "volume", "set", args.volume, *pairs))
    if args.dry_run:
        return 1 if changes else 0
    prepare(args.volume, changes, args.host)
    if args.json:          # one JSON document: the changes; the exit status tells how the check ends
        from one_gluster.admin.checks import check
        from one_gluster.admin.report import exit_code
        return exit_code(check(args.volume, args.host, owner))
    print()
    return cmd_check(args)


def cmd_mount(args: argparse.Namespace) -> int:
    from one_gluster.admin import mounts
    from one_gluster.admin.report import Finding, exit_code, show
    from one_gluster.core import gluster
    from one_gluster.core.volume import parse_servers

    servers = parse_servers(args.host)
    if not servers:
        raise DriverError("--host needs at least one gluster server")
    notes = []
    if len(servers) == 1:
        try:
            info = gluster.volume_info(args.volume.partition("/")[0], remote=servers[0].host)
        except DriverError as exc:
            info = None
            notes.append(Finding("note", "backup servers", f"none: the brick hosts are unknown ({exc})"))
        if info is not None:
            servers = mounts.with_brick_hosts(servers, [b.host for b in info.bricks])
    layout = mounts.Layout(args.volume.strip("/"), servers, os.path.abspath(args.datastores), args.system,
                           tuple(args.images))
    findings = notes + mounts.set_up(layout, _owner(args.owner), args.fstab, args.dry_run)
    show(findings, args.json, volume=args.volume, mount_point=layout.mount_point)
    return exit_code(findings)


def cmd_host_check(args: argparse.Namespace) -> int:
    import socket

    from one_gluster.admin import host_check
    from one_gluster.admin.report import exit_code, show

    mount_point = os.path.join(os.path.abspath(args.datastores), str(args.system)) if args.system is not None else None
    findings, kinds = host_check.check(args.node, mount_point, _owner(args.owner))
    show(findings, args.json, host=args.node or socket.gethostname(), disk_types=kinds)
    return exit_code(findings)


def cmd_host_prepare(args: argparse.Namespace) -> int:
    args.fstab = None if args.no_fstab else args.fstab
    return cmd_mount(args)


def _share_default() -> str:
    """Where install.sh put share/, or the source tree's share/ when run from a checkout."""
    installed = _one_path("/usr/share/one-gluster", "share/one-gluster")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "share")


def cmd_datastore_create(args: argparse.Namespace) -> int:
    from one_gluster.admin import datastore_create
    from one_gluster.admin.checks import check
    from one_gluster.admin.report import exit_code, table
    from one_gluster.core.commands import quote
    from one_gluster.core.volume import parse_servers

    servers = parse_servers(args.host)
    if not servers:
        raise DriverError("--host needs at least one gluster server")
    texts = datastore_create.templates(args.templates, args.volume.strip("/"), args.host, args.name, args.disk_type)
    findings = [] if args.no_check else check(args.volume.partition("/")[0], servers[0].host, _owner(args.owner))
    code = exit_code(findings)
    problems = [f for f in findings if f.status in ("warn", "fail")]
    created = [] if code == 2 else datastore_create.create(texts, args.cluster)
    if args.json:
        print(json.dumps({"volume": args.volume, "check": [f._asdict() for f in problems],
                          "items": [c._asdict() for c in created]}, indent=2))
        return code
    if problems:
        print(table(problems[0]._fields, problems) + "\n")
    if code == 2:
        print(f"{args.volume} is not fit for VM images: nothing created (fix the failures, or --no-check)")
        return code
    print(table(created[0]._fields, created))
    print(f"\nNext, on the front-end and on every host:\n  one-gluster mount {args.volume} "
          f"--host {quote(args.host)} --system {created[0].id} --images {created[1].id}")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="one-gluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_volume_commands, _mount_command, _host_commands, _datastore_commands, _lab_commands,
                _disk_commands):
        add(sub)
    return parser


def _volume_commands(sub: Any) -> None:
    """`check` and `prepare` of a gluster volume."""
    check = sub.add_parser("check", help="is a gluster volume fit for VM images?",
                           description="Check a volume for VM images, the way oVirt does, warning rather than "
                                       "refusing: started, replicated (replica 3 or arbiter), bricks online, the "
                                       "virt option group by effective values, quorum, insecure ports, owner "
                                       "ids. Each finding comes with the command that fixes it. "
                                       "Exit 0 all well, 1 warnings, 2 failures.")
    prepare = sub.add_parser("prepare", help="apply what check asks for to a gluster volume",
                             description="Set the option group meant for the volume's type (virt, or "
                                         "distributed-virt without replicas) except sharding, "
                                         "server.allow-insecure, and storage.owner-uid/gid to oneadmin's ids, "
                                         "in one `gluster volume set`; show each change, then check again.")
    for command in (check, prepare):
        command.add_argument("volume", help="gluster volume name")
        command.add_argument("--host", help="ask the glusterd of this server (default: the local one)")
        command.add_argument("--owner", metavar="UID:GID", help="oneadmin's ids (default: the local oneadmin's)")
        command.add_argument("--json", action="store_true", help="machine-readable output")
    prepare.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    check.set_defaults(func=cmd_check)
    prepare.set_defaults(func=cmd_prepare)


def _mount_arguments(mount: argparse.ArgumentParser) -> None:
    mount.add_argument("volume", help="GLUSTER_VOLUME (name, or name/subdir)")
    mount.add_argument("--host", required=True, help='GLUSTER_HOST, e.g. "gs1 gs2:24007 gs3"')
    mount.add_argument("--system", type=int, required=True, metavar="ID", help="the system datastore's id")
    mount.add_argument("--images", type=int, nargs="*", default=[], metavar="ID", help="image datastores' ids")
    mount.add_argument("--datastores", default=_one_path("/var/lib/one/datastores", "var/datastores"),
                       help="DATASTORE_LOCATION (default %(default)s)")
    mount.add_argument("--owner", metavar="UID:GID", help="oneadmin's ids (default: the local oneadmin's)")
    mount.add_argument("--dry-run", action="store_true", help="show what would be done")
    mount.add_argument("--json", action="store_true", help="machine-readable output")


def _host_commands(sub: Any) -> None:
    """`host check` and `host prepare`: a KVM host's side."""
    host = sub.add_parser("host", help="what a KVM host can run, and its mount",
                          description="A KVM host's side of a gluster datastore.")
    host_sub = host.add_subparsers(dest="host_command", required=True)
    check = host_sub.add_parser(
        "check", help="can this host (or NODE, through ssh) run the disks of a gluster datastore?",
        description="Run the host probe here, or on NODE through ssh as oneadmin reaches it, and report: "
                    "whether the host's QEMU opens gluster disks (QEMU is asked), its version against the "
                    "driver's deprecation (9.2) and removal (11.1), libvirtd, the volume mounted live at the "
                    "system datastore directory with backup volfile servers and oneadmin's ownership, "
                    "glusterd and brick ports reachable; and which DISK_TYPE the host can run. "
                    "Exit 0 all well, 1 warnings, 2 failures.")
    check.add_argument("node", nargs="?", help="the KVM host (default: this machine)")
    check.add_argument("--system", type=int, metavar="ID",
                       help="the system datastore whose directory must hold the mount (default: any gluster mount)")
    check.add_argument("--datastores", default=_one_path("/var/lib/one/datastores", "var/datastores"),
                       help="DATASTORE_LOCATION (default %(default)s)")
    check.add_argument("--owner", metavar="UID:GID", help="oneadmin's ids (default: the local oneadmin's)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_host_check)
    prepare = host_sub.add_parser(
        "prepare", help="the FUSE mount and fstab entry a KVM host needs",
        description="On a KVM host: `one-gluster mount` with its fstab entry, so that the mount comes back "
                    "at boot. Safe to rerun; a dead mount is mounted again.")
    _mount_arguments(prepare)
    prepare.add_argument("--fstab", default="/etc/fstab", metavar="FILE", help="the fstab (default %(default)s)")
    prepare.add_argument("--no-fstab", action="store_true", help="mount only")
    prepare.set_defaults(func=cmd_host_prepare)


def _mount_command(sub: Any) -> None:
    """`mount`: the volume where the datastores need it."""
    mount = sub.add_parser("mount", help="mount a gluster volume where the datastores need it",
                           description="FUSE-mount the volume as the system datastore's directory, with the "
                                       "other GLUSTER_HOST entries (or the volume's brick hosts) as "
                                       "backup-volfile-servers, link the image datastores' directories to it "
                                       "(core names disks relative to the volume root), own it by oneadmin, "
                                       "and optionally record it in fstab. Safe to rerun: a dead mount is "
                                       "mounted again. Run it on the front-end and on every host.")
    _mount_arguments(mount)
    mount.add_argument("--fstab", nargs="?", const="/etc/fstab", metavar="FILE",
                       help="add the mount to fstab (default file /etc/fstab)")
    mount.set_defaults(func=cmd_mount)


def _datastore_commands(sub: Any) -> None:
    """`datastore create`."""
    datastore = sub.add_parser("datastore", help="OpenNebula datastores on a gluster volume",
                               description="OpenNebula datastores on a gluster volume.")
    datastore_sub = datastore.add_subparsers(dest="datastore_command", required=True)
    create = datastore_sub.add_parser(
        "create", help="create the system and image datastores of a volume",
        description="Check the volume (failures stop here, warnings are shown), then create through "
                    "OpenNebula's API (ONE_XMLRPC, ONE_AUTH) the system and the image datastore from the "
                    "templates in share/datastores, with DISK_TYPE, GLUSTER_HOST and GLUSTER_VOLUME set, and "
                    "print their ids.")
    create.add_argument("volume", help="GLUSTER_VOLUME (name, or name/subdir)")
    create.add_argument("--host", required=True, help='GLUSTER_HOST, e.g. "gs1:24007 gs2 gs3"')
    create.add_argument("--name", default="gluster", help="prefix of the datastores' names (default %(default)s)")
    create.add_argument("--cluster", type=int, default=-1, help="cluster id (default: OpenNebula's default)")
    create.add_argument("--disk-type", default="GLUSTER", choices=("GLUSTER", "FILE"), type=str.upper,
                        help="how KVM opens the disks: through libgfapi (GLUSTER, the default), or as files "
                             "through each host's FUSE mount (FILE: for hosts whose QEMU has no gluster driver)")
    create.add_argument("--templates", default=os.path.join(_share_default(), "datastores"),
                        help="directory of gluster-system.ds, gluster-images.ds and gluster-images-file.ds "
                             "(default %(default)s)")
    create.add_argument("--owner", metavar="UID:GID", help="oneadmin's ids, for the check")
    create.add_argument("--no-check", action="store_true", help="create without checking the volume")
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.set_defaults(func=cmd_datastore_create)


def _lab_commands(sub: Any) -> None:
    """`lab` and `demo`."""
    lab = sub.add_parser("lab", help="a loopback gluster volume for trying the drivers and for tests",
                         description="Start, stop or show the lab: glusterd, a volume on loopback, its FUSE mount; "
                                     "with --servers, a trusted pool of that many gluster servers on 127.1.1.1-3 "
                                     "(one glusterd each, peer-probed), a replica volume with a brick on each, "
                                     "mounted with the others as backup volfile servers.")
    lab.add_argument("action", choices=("up", "down", "status"))
    lab.add_argument("--dir", default=DEFAULT_ROOT, help="directory for bricks and mount (default %(default)s)")
    lab.add_argument("--volume", default="onelab", help="volume name (default %(default)s)")
    lab.add_argument("--host", default=DEFAULT_HOST, help="loopback brick host (default %(default)s)")
    lab.add_argument("--replica", type=int, default=1, choices=(1, 3), help="1 brick, or replica 3")
    lab.add_argument("--mount", help="mount point (default DIR/mnt/VOLUME)")
    lab.add_argument("--servers", type=int, default=1, choices=(1, 2, 3),
                     help="gluster servers: 1 (the default glusterd), or a pool of 2 or 3 (DIR/pool)")
    lab.add_argument("--virt", action="store_true", help="the pool's volume with gluster's virt option group")
    lab.add_argument("--stop-glusterd", action="store_true",
                     help="let the pool stop the default glusterd, whose port 24007 it needs (down starts it again)")
    lab.add_argument("--json", action="store_true", help="machine-readable output")
    lab.set_defaults(func=cmd_lab)

    demo = sub.add_parser("demo", help="the drivers at work on the lab volume, called as oned calls them",
                          description="Bring the lab up, lay out datastores 100 (system) and 101 (images) "
                                      "on it, import an image through the installed datastore driver (stat, "
                                      "cp), deploy it as a VM disk through the TM (clone) exactly as oned does, "
                                      "print the libvirt disk element OpenNebula core renders for it, and open "
                                      "it through libgfapi as KVM does.")
    demo.add_argument("--dir", default=DEFAULT_ROOT, help="lab directory (default %(default)s)")
    demo.add_argument("--remotes", default=_remotes_default(), help="OpenNebula remotes (default %(default)s)")
    demo.add_argument("--image", help="image path under /var/tmp or http(s) URL (default: one is made)")
    demo.add_argument("--no-gfapi", action="store_true", help="skip the ~10 s open through libgfapi")
    demo.add_argument("--servers", type=int, default=1, choices=(1, 2, 3),
                      help="on the pool lab of that many servers (DIR/pool, as `lab up --servers`); server 1 "
                           "then fails, the drivers and QEMU go on, it comes back and heals")
    demo.add_argument("--stop-glusterd", action="store_true",
                      help="with --servers: stop the default glusterd for the pool's port 24007, as `lab up`")
    demo.set_defaults(func=cmd_demo)


def _disk_commands(sub: Any) -> None:
    """`disk-xml` and `uri`: the disk KVM opens."""
    disk = sub.add_parser("disk-xml", help="the <disk> element OpenNebula core writes for a gluster disk",
                          description="Print the libvirt disk OpenNebula core renders: for DISK_TYPE=GLUSTER "
                                      "a network disk with one <host> per GLUSTER_HOST entry; with --file, "
                                      "for DISK_TYPE=FILE, a file disk at its path in the system datastore.")
    disk.add_argument("--host", help='GLUSTER_HOST, e.g. "gs1:24007 gs2"')
    disk.add_argument("--file", metavar="PATH",
                      help="a DISK_TYPE=FILE disk: DATASTORE_LOCATION/<system ds>/<vmid>/disk.<id>")
    disk.add_argument("--name", help="the name inside the volume, VOL/PATH")
    disk.add_argument("--volume", default="", help="GLUSTER_VOLUME (with --vmid/--disk-id/--clone or --source)")
    disk.add_argument("--vmid", type=int, default=0)
    disk.add_argument("--disk-id", type=int, default=0)
    disk.add_argument("--source", help="the image SOURCE (persistent disks)")
    disk.add_argument("--clone", action="store_true", help="a non-persistent disk: VOL/<vmid>/disk.<id>")
    disk.add_argument("--format", default="qcow2", choices=("raw", "qcow2"))
    disk.add_argument("--target", default="vda")
    disk.add_argument("--bus", default="virtio")
    disk.add_argument("--device", default="disk", choices=("disk", "cdrom"))
    disk.set_defaults(func=cmd_disk_xml)

    uri = sub.add_parser("uri", help="a gluster:// URI for qemu-img and qemu",
                         description="Print a URI in QEMU's gluster syntax for a path inside a volume.")
    uri.add_argument("path", help="VOL/PATH inside the volume")
    uri.add_argument("--host", help='GLUSTER_HOST (its first entry is used), e.g. "gs1:24007"')
    uri.add_argument("--transport", default="tcp", choices=("tcp", "unix", "rdma"))
    uri.add_argument("--socket", help="glusterd socket for the unix transport")
    uri.set_defaults(func=cmd_uri)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DriverError as exc:
        print(f"one-gluster: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
