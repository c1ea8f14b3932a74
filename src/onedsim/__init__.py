"""What oned sends to the drivers and answers through its API, built field for field (OpenNebula 7.x).

oned is the one component no registry ships, so the demo and the tests drive the drivers with
these documents: the same elements in the same order as `Image::to_xml` / `Datastore::to_xml`
(see tests/fixtures/opennebula-7.5), base64 on stdin, the object id as the only argument.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import threading
import zlib
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from lxml import etree

_PERMS = ("OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A", "OTHER_U", "OTHER_M", "OTHER_A")


def _add(parent: etree._Element, tag: str, text: object = None) -> etree._Element:
    node = etree.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _common(node: etree._Element, oid: int, name: str, perms: str) -> None:
    for tag, text in (("ID", oid), ("UID", 0), ("GID", 0), ("UNAME", "oneadmin"), ("GNAME", "oneadmin"),
                      ("NAME", name)):
        _add(node, tag, text)
    permissions = _add(node, "PERMISSIONS")
    for tag, bit in zip(_PERMS, perms):
        _add(permissions, tag, bit)


def _template(parent: etree._Element, values: Mapping[str, str]) -> None:
    template = _add(parent, "TEMPLATE")
    for key in sorted(values):
        _add(template, key, values[key])


def image(oid: int, *, name: str = "image", path: str = "", source: str = "", fmt: str = "", fs: str = "",
          size_mb: Optional[int] = None, image_type: int = 0, persistent: int = 0, state: int = 4,
          target_snapshot: int = -1, snapshot_ids: Sequence[int] = (), datastore_id: int = 101,
          datastore: str = "gimg", template: Optional[Mapping[str, str]] = None) -> etree._Element:
    """An <IMAGE> as Image::to_xml writes it."""
    node = etree.Element("IMAGE")
    _common(node, oid, name, "110000000")
    for tag, text in (("TYPE", image_type), ("DISK_TYPE", 5), ("PERSISTENT", persistent),
                      ("REGTIME", 1795266083), ("MODTIME", 1795266083), ("SOURCE", source), ("PATH", path),
                      ("FORMAT", fmt), ("FS", fs), ("SIZE", size_mb if size_mb is not None else ""),
                      ("STATE", state), ("PREV_STATE", 0), ("RUNNING_VMS", 0), ("CLONING_OPS", 0),
                      ("CLONING_ID", -1), ("TARGET_SNAPSHOT", target_snapshot), ("DATASTORE_ID", datastore_id),
                      ("DATASTORE", datastore)):
        _add(node, tag, text)
    for tag in ("VMS", "CLONES", "APP_CLONES"):
        _add(node, tag)
    _template(node, {"DEV_PREFIX": "sd", **(template or {})})
    snapshots = _add(node, "SNAPSHOTS")
    _add(snapshots, "ALLOW_ORPHANS", "YES")
    _add(snapshots, "CURRENT_BASE", -1)
    _add(snapshots, "NEXT_SNAPSHOT", max(snapshot_ids, default=-1) + 1)
    for sid in snapshot_ids:
        snap = _add(snapshots, "SNAPSHOT")
        for tag, text in (("ACTIVE", "NO"), ("DATE", 1795266083), ("ID", sid), ("NAME", f"snap{sid}"),
                          ("PARENT", -1), ("SIZE", 0)):
            _add(snap, tag, text)
    _add(node, "BACKUP_INCREMENTS")
    _add(node, "BACKUP_DISK_IDS")
    return node


def stat_image(path: str, size_mb: Optional[int] = None) -> etree._Element:
    """The minimal <IMAGE> oned sends to `stat` (ImageManager::stat_image)."""
    node = etree.Element("IMAGE")
    _add(node, "PATH", path)
    _add(node, "SIZE", size_mb)
    return node


def datastore(oid: int, base_path: str, template: Mapping[str, str], *, name: str = "gimg",
              ds_type: int = 0, images: Sequence[int] = ()) -> etree._Element:
    """A <DATASTORE> as Datastore::to_xml writes it for a gluster image datastore."""
    node = etree.Element("DATASTORE")
    _common(node, oid, name, "110100000")
    for tag, text in (("DS_MAD", "gluster"), ("TM_MAD", "gluster"), ("BASE_PATH", base_path),
                      ("TYPE", ds_type), ("DISK_TYPE", 5), ("STATE", 0)):
        _add(node, tag, text)
    _add(_add(node, "CLUSTERS"), "ID", 0)
    for tag in ("TOTAL_MB", "FREE_MB", "USED_MB"):
        _add(node, tag, 0)
    image_ids = _add(node, "IMAGES")
    for iid in images:
        _add(image_ids, "ID", iid)
    defaults = {"ALLOW_ORPHANS": "YES", "CLONE_TARGET": "SYSTEM", "DISK_TYPE": "GLUSTER", "DS_MAD": "gluster",
                "LN_TARGET": "NONE", "TM_MAD": "gluster", "TYPE": "IMAGE_DS"}
    _template(node, {**defaults, **template})
    return node


def request(datastore_node: etree._Element, image_node: Optional[etree._Element] = None,
            extra: Optional[Mapping[str, str]] = None) -> bytes:
    """The base64 DS_DRIVER_ACTION_DATA, on one line with no trailing newline, as oned writes it."""
    root = etree.Element("DS_DRIVER_ACTION_DATA")
    if image_node is not None:
        root.append(image_node)
    root.append(datastore_node)
    for tag, text in (extra or {}).items():
        _add(root, tag, text)
    return base64.b64encode(etree.tostring(root))


def call(executable: str, object_id: int, payload: bytes, env: Optional[Mapping[str, str]] = None,
         user: Optional[int] = None) -> subprocess.CompletedProcess:
    """Run a DS action as oned 6.8+ does: `<action> <id>`, the base64 request on stdin; as uid and gid
    `user` (oned's oneadmin) where given."""
    return subprocess.run([executable, str(object_id)], input=payload, capture_output=True,
                          env={**os.environ, **(env or {})}, check=False, **as_user(user))


def as_user(uid: Optional[int]) -> dict[str, Any]:
    """subprocess arguments that run a command as uid and gid `uid` with no other group (None: as this
    process)."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def image_disk(disk_id: int, *, image_id: int, source: str, fmt: str, size_mb: int, volume: str, hosts: str,
               clone: bool = True, target: str = "", datastore_id: int = 101, driver: str = "",
               original_size_mb: Optional[int] = None, extra: Optional[Mapping[str, str]] = None,
               disk_type: str = "GLUSTER") -> dict[str, str]:
    """The DISK oned writes for an image of a gluster datastore, inherited attributes included; the
    datastore's DISK_TYPE (GLUSTER, or FILE) is also the disk's TYPE."""
    return {
        "ALLOW_ORPHANS": "FORMAT", "CLONE": "YES" if clone else "NO", "CLONE_TARGET": "SYSTEM", "CLUSTER_ID": "0",
        "DATASTORE": "gimg", "DATASTORE_ID": str(datastore_id), "DEV_PREFIX": "sd", "DISK_ID": str(disk_id),
        "DISK_SNAPSHOT_TOTAL_SIZE": "0", "DISK_TYPE": disk_type, "DRIVER": driver or fmt, "FORMAT": fmt,
        "GLUSTER_HOST": hosts, "GLUSTER_VOLUME": volume, "IMAGE": f"image{image_id}", "IMAGE_ID": str(image_id),
        "IMAGE_STATE": "2" if clone else "8", "LN_TARGET": "NONE",
        "ORIGINAL_SIZE": str(original_size_mb if original_size_mb is not None else size_mb),
        "PERSISTENT_SNAPSHOTS": "YES", "READONLY": "NO", "SAVE": "NO" if clone else "YES", "SIZE": str(size_mb),
        "SOURCE": source, "TARGET": target or f"sd{chr(ord('a') + disk_id)}", "TM_MAD": "gluster",
        "TYPE": disk_type, **(extra or {}),
    }


def volatile_disk(disk_id: int, *, kind: str, size_mb: int, fmt: str = "raw", fs: str = "",
                  datastore_id: int = 100) -> dict[str, str]:
    """The DISK of a volatile disk (TYPE fs or swap) on the system datastore."""
    disk = {"ALLOW_ORPHANS": "FORMAT", "CLUSTER_ID": "0", "DATASTORE": "gsys", "DATASTORE_ID": str(datastore_id),
            "DEV_PREFIX": "sd", "DISK_ID": str(disk_id), "DISK_TYPE": "FILE", "DRIVER": fmt, "FORMAT": fmt,
            "PERSISTENT_SNAPSHOTS": "YES", "SIZE": str(size_mb), "TARGET": f"sd{chr(ord('a') + disk_id)}",
            "TM_MAD": "gluster", "TYPE": kind}
    if fs:
        disk["FS"] = fs
    return dict(sorted(disk.items()))


def vm(oid: int, disks: Sequence[Mapping[str, str]], *, state: int = 3, lcm_state: int = 3, deploy_id: str = "",
       hostname: str = "127.0.0.1", system_ds: int = 100) -> etree._Element:
    """A <VM> as `onevm show -x` (one.vm.info) returns it, with one history record."""
    node = etree.Element("VM")
    _common(node, oid, f"vm-{oid}", "110000000")
    for tag, text in (("LAST_POLL", 0), ("STATE", state), ("LCM_STATE", lcm_state), ("PREV_STATE", state),
                      ("PREV_LCM_STATE", lcm_state), ("RESCHED", 0), ("STIME", 1795266084), ("ETIME", 0),
                      ("DEPLOY_ID", deploy_id)):
        _add(node, tag, text)
    _add(node, "MONITORING")
    _add(node, "SCHED_ACTIONS")
    template = _add(node, "TEMPLATE")
    _add(template, "CPU", "0.1")
    for disk in disks:
        element = _add(template, "DISK")
        for key, value in disk.items():
            _add(element, key, value)
    _add(template, "MEMORY", 64)
    _add(template, "TEMPLATE_ID", 0)
    _add(template, "TM_MAD_SYSTEM", "gluster")
    _add(template, "VMID", oid)
    _add(node, "USER_TEMPLATE")
    history = _add(_add(node, "HISTORY_RECORDS"), "HISTORY")
    for tag, text in (("OID", oid), ("SEQ", 0), ("HOSTNAME", hostname), ("HID", 0), ("CID", 0),
                      ("STIME", 1795266098), ("ETIME", 0), ("VM_MAD", "kvm"), ("TM_MAD", "gluster"),
                      ("DS_ID", system_ds), ("PLAN_ID", -1), ("ACTION_ID", 0), ("PSTIME", 1795266098),
                      ("PETIME", 0), ("RSTIME", 0), ("RETIME", 0), ("ESTIME", 0), ("EETIME", 0), ("ACTION", 0),
                      ("UID", -1), ("GID", -1), ("REQUEST_ID", -1)):
        _add(history, tag, text)
    backups = _add(node, "BACKUPS")
    _add(backups, "BACKUP_CONFIG")
    _add(backups, "BACKUP_IDS")
    return node


class OnedApi:
    """A loopback XML-RPC server answering pyone's `one.vm.info` and `one.datastore.info` with documents
    in oned's format, and `one.datastore.allocate` with new ids, recording every call: the stand-in
    for oned, which no registry ships."""

    def __init__(self, session: str = "oneadmin:opennebula") -> None:
        from xmlrpc.server import SimpleXMLRPCServer

        self.session = session
        self.vms: dict[int, etree._Element] = {}
        self.datastores: dict[int, etree._Element] = {}
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self._server = SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=True)
        self._server.register_function(self._info(self.vms, "VM"), "one.vm.info")
        self._server.register_function(self._info(self.datastores, "Datastore"), "one.datastore.info")
        self._server.register_function(self._allocate, "one.datastore.allocate")
        self.next_id = 100
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/RPC2"

    def _info(self, table: dict[int, etree._Element], kind: str):
        def info(session: str, oid: int, *rest: object) -> list[object]:
            self.calls.append((f"one.{kind.lower()}.info", (oid, *rest)))
            if session != self.session:
                return [False, "[one.info] User couldn't be authenticated, aborting call.", 0x0100, -1]
            if oid not in table:
                return [False, f"[one.info] Error getting {kind} [{oid}].", 0x0400, oid]
            return [True, etree.tostring(table[oid]).decode(), 0]
        return info

    def _allocate(self, session: str, template: str, cluster: int) -> list[object]:
        self.calls.append(("one.datastore.allocate", (template, cluster)))
        if session != self.session:
            return [False, "[one.datastore.allocate] User couldn't be authenticated, aborting call.", 0x0100, -1]
        self.next_id += 1
        return [True, self.next_id - 1, 0]

    def __enter__(self) -> "OnedApi":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def system_monitor_request(ds_id: int, location: str, vm_disks: bool) -> bytes:
    """What oned sends a system datastore's TM `monitor` on stdin (DATASTORE_LOCATION without its trailing
    slash; MONITOR_VM_DISKS=1 asks for each VM's disk sizes, sent to monitord)."""
    node = datastore(ds_id, f"{location.rstrip('/')}//{ds_id}", {"SHARED": "YES", "TYPE": "SYSTEM_DS"},
                     name="gsys", ds_type=1)
    return request(node, extra={"DATASTORE_LOCATION": location.rstrip("/"), "MONITOR_VM_DISKS": str(int(vm_disks))})


class Monitord:
    """A UDP socket on loopback where monitord listens, and the ONE_LOCATION whose etc/monitord.conf names
    it as OpenNebula writes that file: the stand-in for monitord, which no registry ships."""

    def __init__(self, one_location: str) -> None:
        self.one_location = one_location
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.conf = os.path.join(one_location, "etc", "monitord.conf")
        os.makedirs(os.path.dirname(self.conf), exist_ok=True)
        self.configure(pubkey="")

    def configure(self, pubkey: str) -> None:
        """(Re)write monitord.conf's NETWORK section, naming `pubkey` ("" for none)."""
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(f'NETWORK = [\n    ADDRESS = "0.0.0.0",\n    MONITOR_ADDRESS = "auto",\n'
                    f'    PORT    = {self.sock.getsockname()[1]},\n    THREADS = 8,\n    PUBKEY  = "{pubkey}",\n'
                    f'    PRIKEY  = ""\n]\n')

    @property
    def env(self) -> dict[str, str]:
        return {"ONE_LOCATION": self.one_location}

    def messages(self, wait: float = 10.0, quiet: float = 0.3) -> list["Message"]:
        """What arrived: the first message within `wait` seconds, then any more until `quiet` seconds pass
        with none; [] when nothing came."""
        found: list[Message] = []
        self.sock.settimeout(wait)
        try:
            while True:
                found.append(Message.decode(self.sock.recv(1 << 17)))
                self.sock.settimeout(quiet)
        except socket.timeout:
            return found

    def vms(self, wait: float = 10.0) -> dict[int, str]:
        """The MONITOR_VM records that arrived: VM id -> its MONITOR attributes."""
        return {vmid: attrs for message in self.messages(wait) for vmid, attrs in message.vms().items()}

    def vm_disks(self, wait: float = 10.0) -> dict[int, dict[int, int]]:
        """The MONITOR_VM records that arrived: VM id -> disk id -> DISK_SIZE in MB."""
        return {vmid: {int(d): int(s) for d, s in re.findall(r"DISK_SIZE = \[ ID=(\d+), SIZE=(\d+)\]", attrs)}
                for vmid, attrs in self.vms(wait).items()}

    def close(self) -> None:
        self.sock.close()


class Message(NamedTuple):
    """One message to monitord, as `send_to_monitor` sends it: `<TYPE> SUCCESS|FAILURE <oid> <ts> <base64>`
    and a newline, the base64 holding the zlib-deflated payload and a newline."""

    header: list[str]
    payload: bytes     # inflated; RSA blocks when monitord.conf names a PUBKEY
    size: int          # of the datagram

    @classmethod
    def decode(cls, datagram: bytes) -> "Message":
        if not datagram.endswith(b"\n") or datagram.count(b"\n") != 1:
            raise ValueError(f"not one line: {datagram[:80]!r}")
        fields = datagram[:-1].decode().split(" ")
        packed = base64.b64decode(fields[-1], validate=True)
        if len(fields) != 5 or not packed.endswith(b"\n"):
            raise ValueError(f"not send_to_monitor's format: {datagram[:80]!r}")
        return cls(fields[:4], zlib.decompress(packed[:-1]), len(datagram))

    def vms(self) -> dict[int, str]:
        """VM id -> its MONITOR attributes, of a plain MONITOR_VM message."""
        return {int(vmid): base64.b64decode(attrs).decode()
                for vmid, attrs in re.findall(r'VM=\[ID=(\d+), MONITOR="([^"]+)"\]', self.payload.decode())}
