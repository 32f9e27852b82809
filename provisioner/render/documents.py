"""An instance's workspace documents: its `documents:` entries expanded into files, checked on the controller.

Each entry names a target in the workspace (relative; `.` is the workspace itself) and a source on the controller:
a file, or a directory whose whole tree lands under the target. Expansion refuses what would put a file outside
the workspace (absolute targets, `..`), what is not plainly a file (FIFOs, devices: reading one could hang), and
a link in a source tree that leads outside that tree (a source directory cannot smuggle in `~/.ssh/id_ed25519`).
Where two entries give the same file, the more specific target wins (`skills/x` over `.`), so that a layer can
override one file of a directory an earlier layer gives.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass

from provisioner.core.desired import DesiredDir, DesiredFile, FileKind
from provisioner.inventory.model import DocumentEntry, Instance

MAX_BYTES = 4 << 20  # one document: travels base64 in a write script, and is read whole into a plan's diff
RESERVED = (".ocp-prev",)  # the tool's backups beside user-side files (remote/scripts/trust.py BACKUP_DIR)


@dataclass(frozen=True)
class DocumentFile:
    rel: str  # normalised path relative to the workspace
    source: str  # the file to read on the controller
    entry: DocumentEntry


class DocumentError(Exception):
    """A document entry that cannot be used, and why; `field` is "source" when the source is at fault."""

    def __init__(self, inst: Instance, entry: DocumentEntry, message: str, field: str = "") -> None:
        super().__init__(f"{inst.address}: document {entry.target!r}: {message}")
        self.instance = inst
        self.entry = entry
        self.field = field


def target_problem(target: str) -> str | None:
    """Why a target is not a path confined to the workspace, or None."""
    if target.startswith("/") or target.startswith("~"):
        return "is absolute: a document's path is relative to the workspace"
    parts = [p for p in target.split("/") if p not in ("", ".")]
    if ".." in parts:
        return "contains `..`: a document stays inside the workspace"
    if any(p in RESERVED for p in parts):
        return "is inside .ocp-prev, where the tool keeps the previous versions of the files it writes"
    return None


def _depth(target: str) -> int:
    return len([p for p in target.split("/") if p not in ("", ".")])


def expand_entry(inst: Instance, e: DocumentEntry) -> list[DocumentFile]:
    """The files one entry gives, or a DocumentError."""
    why = target_problem(e.target)
    if why:
        raise DocumentError(inst, e, why)
    try:
        st = os.stat(e.source)  # the source itself may be a link: what it names is the source
    except OSError as exc:
        raise DocumentError(inst, e, f"source {e.source} cannot be read: {exc.strerror or exc}", "source") from None
    base = posixpath.normpath(e.target)
    if stat.S_ISREG(st.st_mode):
        if _depth(e.target) == 0:
            raise DocumentError(inst, e, f"source {e.source} is a file: name the file it becomes in the workspace "
                                "(e.g. AGENTS.md), `.` takes a directory", "source")
        return [_file(inst, e, base, e.source, st)]
    if not stat.S_ISDIR(st.st_mode):
        raise DocumentError(inst, e, f"source {e.source} is neither a file nor a directory", "source")
    root = os.path.realpath(e.source)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*sorted(filenames), *[d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if any(p in RESERVED for p in rel.split("/")):
                raise DocumentError(inst, e, f"{path}: the tool keeps its backups in .ocp-prev", "source")
            real = os.path.realpath(path)
            if os.path.islink(path) and not (real + "/").startswith(root.rstrip("/") + "/"):
                raise DocumentError(inst, e, f"{path} is a link to {real}, outside the source directory {root}: "
                                    "it is not followed", "source")
            st = os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                raise DocumentError(inst, e, f"{path} is not a regular file (a directory link, FIFO or device): "
                                    "only files are documents", "source")
            out.append(_file(inst, e, posixpath.normpath(posixpath.join(base, rel)), real, st))
    return out


def _file(inst: Instance, e: DocumentEntry, rel: str, source: str, st: os.stat_result) -> DocumentFile:
    if any(ord(c) < 32 or c == "\x7f" for c in rel):
        raise DocumentError(inst, e, f"{rel!r}: a control character in a file name", "source")
    if st.st_size > MAX_BYTES:
        raise DocumentError(inst, e, f"{source} is {st.st_size} bytes, over the {MAX_BYTES >> 20} MiB a document "
                            "may have (documents travel in the write script and plans diff them)", "source")
    return DocumentFile(rel, source, e)


def expand(inst: Instance) -> list[DocumentFile]:
    """Every document file of an instance, the most specific entry winning a path two entries give."""
    by_rel: dict[str, DocumentFile] = {}
    for e in sorted(inst.documents, key=lambda e: _depth(e.target)):
        for f in expand_entry(inst, e):
            by_rel[f.rel] = f
    return [by_rel[r] for r in sorted(by_rel)]


def read(f: DocumentFile) -> bytes:
    with open(f.source, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise OSError(f"{f.source} grew over {MAX_BYTES} bytes")
    return data


def desired_documents(host: str, inst: Instance) -> tuple[list[DesiredFile], list[DesiredDir]]:
    """The instance's documents as files owned by its service user, and the subdirectories they need (created
    when missing, otherwise left as they are: the agent's). The workspace is the user's, so render marks them
    as written as that user."""
    svc = inst.service
    files, dirs = [], {}
    for f in expand(inst):
        path = posixpath.join(inst.workspace, f.rel)
        files.append(DesiredFile(host, inst.name, path, read(f), f.entry.file_mode, svc.user, svc.group,
                                 FileKind.DOCUMENT, seed=f.entry.mode == "seed"))
        parent = posixpath.dirname(path)
        while parent != inst.workspace and parent not in dirs:
            dirs[parent] = DesiredDir(host, inst.name, parent, 0o755, svc.user, svc.group, ensure_only=True)
            parent = posixpath.dirname(parent)
    return files, list(dirs.values())
