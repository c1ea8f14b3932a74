"""`one-gluster`: the admin command. Exit 0 when all is well, 1 with warnings, 2 on failure."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from .errors import DriverError
from .lab import DEFAULT_HOST, DEFAULT_ROOT, Lab


def _remotes_default() -> str:
    location = os.environ.get("ONE_LOCATION")
    return f"{location}/var/remotes" if location else "/var/lib/one/remotes"


def _lab(args: argparse.Namespace) -> Lab:
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
            print(f"{key:12} {', '.join(value) if isinstance(value, list) else value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.dir, args.remotes, args.image, gfapi=not args.no_gfapi)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="one-gluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="a loopback gluster volume for trying the drivers and for tests",
                         description="Start, stop or show the lab: glusterd, a volume on loopback, its FUSE mount.")
    lab.add_argument("action", choices=("up", "down", "status"))
    lab.add_argument("--dir", default=DEFAULT_ROOT, help="directory for bricks and mount (default %(default)s)")
    lab.add_argument("--volume", default="onelab", help="volume name (default %(default)s)")
    lab.add_argument("--host", default=DEFAULT_HOST, help="loopback brick host (default %(default)s)")
    lab.add_argument("--replica", type=int, default=1, choices=(1, 3), help="1 brick, or replica 3")
    lab.add_argument("--mount", help="mount point (default DIR/mnt/VOLUME)")
    lab.add_argument("--json", action="store_true", help="machine-readable output")
    lab.set_defaults(func=cmd_lab)

    demo = sub.add_parser("demo", help="import an image into the lab volume through the drivers",
                          description="Bring the lab up, lay out datastores 100 (system) and 101 (images) "
                                      "on it, and import an image through the installed gluster drivers "
                                      "exactly as oned does; show where it landed and what qemu sees.")
    demo.add_argument("--dir", default=DEFAULT_ROOT, help="lab directory (default %(default)s)")
    demo.add_argument("--remotes", default=_remotes_default(), help="OpenNebula remotes (default %(default)s)")
    demo.add_argument("--image", help="image path under /var/tmp or http(s) URL (default: one is made)")
    demo.add_argument("--no-gfapi", action="store_true", help="skip the ~10 s open through libgfapi")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DriverError as exc:
        print(f"one-gluster: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
