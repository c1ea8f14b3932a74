"""Register the gluster drivers in `oned.conf` and `vmm_execrc`, and take them out again.

Text in, text out, nothing else moved: the rest of each file (comments, other drivers' blocks,
multi-line values) stays byte for byte, and every change leaves a `# one-gluster:` comment that
says what it did, which is what `unregister` undoes. So a second `register` changes nothing, and
`unregister(register(x)) == x`. This module uses only the standard library: install.sh runs it
with the system's python3, before the virtualenv exists (`python3 -m one_gluster.registration`).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import Optional

from one_gluster.admin.file_edits import replace
from one_gluster.admin.oned_conf import Assignment, find, option_list, parse
from one_gluster.admin.report import Finding, exit_code, table

DRIVER = "gluster"
SNAPSHOT_PAIRS = ("kvm-gluster", "qemu-gluster")
INHERITED = ("GLUSTER_HOST", "GLUSTER_VOLUME")
# Which driver lists of which runner name the gluster drivers (oned.conf, §3.1 of the protocol notes).
LISTS = (("TM_MAD", "-d"), ("DATASTORE_MAD", "-d"), ("DATASTORE_MAD", "-s"))
BEGIN, END = "# one-gluster: begin", "# one-gluster: end"
_BLOCK = re.compile(r"\n# one-gluster: begin[^\n]*\n.*?# one-gluster: end\n", re.S)
_RECEIPT = re.compile(r'^# one-gluster: "gluster" added to the ([-a-z ,]+) lists? below[^\n]*\n', re.M)
_WORDS_RECEIPT = re.compile(r"^# one-gluster: ([\w -]+?) added below[^\n]*\n", re.M)
_LIVE_SNAPSHOTS = re.compile(r'^LIVE_DISK_SNAPSHOTS="([^"]*)"', re.M)


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    newline = text.find("\n", pos)
    return len(text) if newline < 0 else newline + 1


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _block(comment: str, body: str) -> str:
    return f"\n{BEGIN} {comment} (install.sh --uninstall removes this block)\n{body.rstrip()}\n{END}\n"


def _inherited(assignments: list[Assignment]) -> set[str]:
    return {a.value.text for a in find(assignments, "INHERIT_DATASTORE_ATTR") if a.value}


def fragment_blocks(fragment: str) -> dict[str, str]:
    """The TM_MAD_CONF / DS_MAD_CONF vectors of share/opennebula/oned-gluster.conf, as written there."""
    return {a.name: fragment[a.start:a.end] for a in parse(fragment)}


def register_oned(text: str, blocks: dict[str, str]) -> tuple[str, list[str]]:
    """`oned.conf` with the gluster drivers registered, and what was done."""
    assignments = parse(text)
    edits, done = [], []
    for runner in ("TM_MAD", "DATASTORE_MAD"):
        vectors = find(assignments, runner)
        if not vectors:
            continue
        vector = vectors[0]
        arguments = vector.attributes.get("ARGUMENTS")
        added = []
        for name, option in LISTS:
            items = option_list(arguments, option) if name == runner and arguments else None
            if items is not None and DRIVER not in items.text.split(","):
                edits.append((items.end, items.end, f",{DRIVER}"))
                added.append(option)
        if added:
            receipt = (f'# one-gluster: "gluster" added to the {", ".join(added)} list{"s" if len(added) > 1 else ""} '
                       "below (install.sh --uninstall takes it out)\n")
            at = _line_start(text, vector.start)
            edits.append((at, at, receipt))
            done.append(f"{runner}: gluster added to {', '.join(added)}")
    for name in ("TM_MAD_CONF", "DS_MAD_CONF"):
        if not find(assignments, name, DRIVER):
            same = find(assignments, name)
            at = _line_end(text, same[-1].end) if same else len(text)
            edits.append((at, at, _block(f"{name} of the gluster driver", blocks[name])))
            done.append(f"{name} for gluster added")
    inherited = _inherited(assignments)
    missing = [attr for attr in INHERITED if attr not in inherited]
    if missing:
        same = find(assignments, "INHERIT_DATASTORE_ATTR")
        at = _line_end(text, same[-1].end) if same else len(text)
        body = "\n".join(f'INHERIT_DATASTORE_ATTR = "{attr}"' for attr in missing)
        edits.append((at, at, _block("disks inherit the gluster attributes of their datastore", body)))
        done.append(f"INHERIT_DATASTORE_ATTR {', '.join(missing)} added")
    return _apply(text, edits), done


def register_vmm(text: str) -> tuple[str, list[str]]:
    """`vmm_execrc` with live disk snapshots allowed for disks of the gluster TM."""
    match = _LIVE_SNAPSHOTS.search(text)
    if not match:
        body = f'LIVE_DISK_SNAPSHOTS="{" ".join(SNAPSHOT_PAIRS)}"'
        return text + _block("live disk snapshots of gluster disks", body), ["LIVE_DISK_SNAPSHOTS set"]
    missing = [pair for pair in SNAPSHOT_PAIRS if pair not in match.group(1).split()]
    if not missing:
        return text, []
    words = " ".join(missing)
    receipt = f"# one-gluster: {words} added below (install.sh --uninstall takes them out)\n"
    edits = [(match.end(1), match.end(1), (" " if match.group(1) else "") + words),
             (match.start(), match.start(), receipt)]
    return _apply(text, edits), [f"LIVE_DISK_SNAPSHOTS: {words} added"]


def unregister(text: str) -> tuple[str, list[str]]:
    """Undo what `register_oned` / `register_vmm` did, from their `# one-gluster:` comments."""
    done = []
    text, blocks = _BLOCK.subn("", text)
    if blocks:
        done.append(f"{blocks} block(s) removed")
    edits = []
    assignments = parse(text)
    for receipt in _RECEIPT.finditer(text):
        vector = next(a for a in assignments if a.start >= receipt.end())
        arguments = vector.attributes["ARGUMENTS"]
        for option in receipt.group(1).replace(",", " ").split():
            items = option_list(arguments, option)
            if items is not None and items.text.endswith(f",{DRIVER}"):
                edits.append((items.end - len(DRIVER) - 1, items.end, ""))
        edits.append((receipt.start(), receipt.end(), ""))
        done.append(f"{vector.name}: gluster taken out of {receipt.group(1)}")
    for receipt in _WORDS_RECEIPT.finditer(text):
        words = receipt.group(1)
        match = _LIVE_SNAPSHOTS.match(text, receipt.end())
        if match:
            value = match.group(1)
            cut = len(words) + 1 if value.endswith(" " + words) else len(words) if value == words else 0
            edits.append((match.end(1) - cut, match.end(1), ""))
        edits.append((receipt.start(), receipt.end(), ""))
        done.append(f"{words} taken out")
    return _apply(text, edits), done


def verify(oned: str, vmm: Optional[str]) -> list[Finding]:
    """What oned will see: the lists, the two blocks, the inherited attributes, live snapshots."""
    assignments = parse(oned)
    findings = []
    for runner, option in LISTS:
        vectors = find(assignments, runner)
        arguments = vectors[0].attributes.get("ARGUMENTS") if vectors else None
        items = option_list(arguments, option) if arguments else None
        check = f"{runner} {option}"
        if not vectors:
            findings.append(Finding("fail", check, f"no {runner} in oned.conf", "add the OpenNebula default block"))
        elif items is None:
            findings.append(Finding("ok", check, "no list: every driver is enabled"))
        elif DRIVER in items.text.split(","):
            findings.append(Finding("ok", check, items.text))
        else:
            findings.append(Finding("fail", check, f"{items.text} (no gluster)", "rerun install.sh"))
    for name in ("TM_MAD_CONF", "DS_MAD_CONF"):
        vectors = find(assignments, name, DRIVER)
        findings.append(Finding("ok", name, ", ".join(f"{k}={v.text}" for k, v in vectors[0].attributes.items()))
                        if vectors else Finding("fail", name, "no gluster entry", "rerun install.sh"))
    inherited = _inherited(assignments)
    for attr in INHERITED:
        findings.append(Finding("ok" if attr in inherited else "fail", f"INHERIT_DATASTORE_ATTR {attr}",
                                "inherited" if attr in inherited else "missing", "" if attr in inherited else
                                "rerun install.sh"))
    if vmm is not None:
        match = _LIVE_SNAPSHOTS.search(vmm)
        pairs = match.group(1).split() if match else []
        findings.append(Finding("ok", "LIVE_DISK_SNAPSHOTS", "kvm-gluster listed") if "kvm-gluster" in pairs else
                        Finding("warn", "LIVE_DISK_SNAPSHOTS", "no kvm-gluster: live disk snapshots refused",
                                "rerun install.sh"))
    return findings


def _read(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _change(path: str, edit, dry_run: bool) -> bool:
    old = _read(path)
    new, done = edit(old)
    if new == old:
        print(f"{path}: unchanged")
        return False
    sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), path, f"{path} (new)"))
    if dry_run:
        print(f"{path}: would change ({'; '.join(done)})")
    else:
        print(f"{path}: {'; '.join(done)} (backup {replace(path, new)})")
    return True


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m one_gluster.registration", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("register", "unregister", "verify"))
    parser.add_argument("--oned-conf", required=True)
    parser.add_argument("--vmm-execrc")
    parser.add_argument("--fragment", help="share/opennebula/oned-gluster.conf (for register)")
    parser.add_argument("--dry-run", action="store_true", help="show the changes as a diff, write nothing")
    args = parser.parse_args(argv)
    try:
        if args.action == "verify":
            findings = verify(_read(args.oned_conf), _read(args.vmm_execrc) if args.vmm_execrc else None)
            print(table(Finding._fields, findings))
            return exit_code(findings)
        if args.action == "register":
            if not args.fragment:
                parser.error("register needs --fragment")
            blocks = fragment_blocks(_read(args.fragment))
            _change(args.oned_conf, lambda text: register_oned(text, blocks), args.dry_run)
            if args.vmm_execrc:
                _change(args.vmm_execrc, register_vmm, args.dry_run)
        else:
            for path in filter(None, (args.oned_conf, args.vmm_execrc)):
                _change(path, unregister, args.dry_run)
    except OSError as exc:
        print(f"registration: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
