"""OpenNebula's API through pyone: the VM and datastore documents TM actions need.

Configured the way OpenNebula's own CLI is: `ONE_XMLRPC` (default http://localhost:2633/RPC2),
and the `user:password` in the file named by `ONE_AUTH`, else `~/.one/one_auth`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, TypeVar

from one_gluster.core import imports
from one_gluster.core.errors import DriverError
from one_gluster.core.template import Template
from one_gluster.core.vm import Vm, disks_by_id

T = TypeVar("T")
DEFAULT_ENDPOINT = "http://localhost:2633/RPC2"
TIMEOUT = 30


def preload() -> None:
    """Import pyone (~0.15 s) in the background while the action checks paths and mounts."""
    imports.preload("pyone")


def endpoint() -> str:
    """ONE_XMLRPC, refused unless it is an http(s) URL (pyone would take anything else for gRPC)."""
    from urllib.parse import urlsplit  # loaded with pyone: only actions that call oned need it

    url = os.environ.get("ONE_XMLRPC") or DEFAULT_ENDPOINT
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:                     # a bad IPv6 address, a port out of range
        usable = False
    if not usable:
        raise DriverError(f"ONE_XMLRPC is not the http(s) URL of OpenNebula's XML-RPC API: {url!r} "
                          f"(the default is {DEFAULT_ENDPOINT})")
    return url


def _reason(exc: BaseException) -> str:
    """What the system said under a connection error ('Connection refused'), else the error's text."""
    todo, seen = [exc], set()
    while todo:
        error = todo.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
        todo += [e for e in (getattr(error, "reason", None), error.__cause__, error.__context__, *error.args)
                 if isinstance(e, BaseException)]
    return str(exc)


def session() -> str:
    """`user:password` from ONE_AUTH or ~/.one/one_auth, as the `one*` commands read it."""
    path = os.environ.get("ONE_AUTH") or os.path.expanduser("~/.one/one_auth")
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().strip()
    except OSError as exc:
        raise DriverError(f"Cannot read the OpenNebula credentials in {path}: {exc.strerror}") from None
    if ":" not in secret:
        raise DriverError(f"The OpenNebula credentials in {path} are not of the form user:password")
    return secret


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Client:
    """One connection to oned; each call raises DriverError with what went wrong."""

    def __init__(self) -> None:
        import pyone

        self._pyone = pyone
        self.endpoint = endpoint()
        self._server = pyone.OneServer(self.endpoint, session=session(), timeout=TIMEOUT)

    def _call(self, what: str, method: Any, *args: Any, doing: str = "show", read: Callable[[Any], T]) -> T:
        """`read(method(*args))`, every way that can fail said as what went wrong with oned."""
        from xml.parsers.expat import ExpatError
        from xmlrpc.client import Error as XmlRpcError, ProtocolError  # both loaded with pyone

        from lxml import etree

        pyone = self._pyone
        try:
            return read(method(*args))
        except pyone.OneNoExistsException:
            raise DriverError(f"{what} does not exist in OpenNebula") from None
        except (pyone.OneAuthenticationException, pyone.OneAuthorizationException) as exc:
            raise DriverError(f"OpenNebula at {self.endpoint} refused to {doing} {what}: {exc}") from None
        except pyone.OneException as exc:
            raise DriverError(f"OpenNebula at {self.endpoint} failed to {doing} {what}: {exc}") from None
        except OSError as exc:       # requests' connection errors are OSErrors too
            raise DriverError(f"Cannot reach OpenNebula at {self.endpoint}: {_reason(exc)}") from None
        except ProtocolError as exc:
            raise DriverError(f"OpenNebula's XML-RPC API is not at {self.endpoint}: that server answers HTTP "
                              f"{exc.errcode} (check ONE_XMLRPC)") from None
        except (XmlRpcError, ExpatError):
            raise DriverError(f"The server at {self.endpoint} does not answer in XML-RPC: it is not OpenNebula's "
                              f"API (check ONE_XMLRPC)") from None
        except (pyone.bindings.supbind.GDSParseError, etree.Error, AttributeError, TypeError, ValueError) as exc:
            raise DriverError(f"OpenNebula at {self.endpoint} answered with a document for {what} that this driver "
                              f"cannot read ({type(exc).__name__}: {exc})") from None

    def vm(self, vmid: int) -> Vm:
        def read(doc: Any) -> Vm:
            disks = disks_by_id(Template.from_mapping(disk) for disk in _as_list((doc.TEMPLATE or {}).get("DISK")))
            return Vm(id=int(doc.ID), lcm_state=int(doc.LCM_STATE), deploy_id=doc.DEPLOY_ID or "", disks=disks)
        return self._call(f"VM {vmid}", self._server.vm.info, vmid, read=read)

    def datastore_template(self, dsid: int) -> Template:
        """The TEMPLATE of `onedatastore show -x`."""
        return self._call(f"Datastore {dsid}", self._server.datastore.info, dsid,
                          read=lambda doc: Template.from_mapping(doc.TEMPLATE or {}))

    def allocate_datastore(self, template: str, cluster: int = -1) -> int:
        """`onedatastore create`: the new datastore's id."""
        return self._call("a datastore", self._server.datastore.allocate, template, cluster, doing="create", read=int)


_client: Optional[Client] = None


def client() -> Client:
    """The process's connection, made on first use."""
    global _client
    if _client is None:
        _client = Client()
    return _client
