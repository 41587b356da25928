"""Reads the seed the emulator was started with, so cases can compare what is served with it."""
from __future__ import annotations

import base64
import json
import pathlib
import re
from dataclasses import dataclass, field

HEADERS = {
    ".py": ("PYTHON", "# Databricks notebook source"),
    ".scala": ("SCALA", "// Databricks notebook source"),
    ".sql": ("SQL", "-- Databricks notebook source"),
    ".r": ("R", "# Databricks notebook source"),
}


def unescape(name: str) -> str:
    """Undoes the seed's %XX escape (UTF-8 bytes, uppercase hex)."""
    raw = re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), name.encode("utf-8"))
    return raw.decode("utf-8")


@dataclass
class TreeEntry:
    path: str
    kind: str  # NOTEBOOK | FILE | DIRECTORY
    language: str | None = None
    content: bytes | None = None


@dataclass
class Seed:
    root: pathlib.Path
    workspace: dict = field(default_factory=dict)
    principals: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    repos: list = field(default_factory=list)
    git_credentials: list = field(default_factory=list)
    jobs: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    permissions: list = field(default_factory=list)
    hive: dict = field(default_factory=dict)
    uc: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)
    mounts: list = field(default_factory=list)
    models: dict = field(default_factory=dict)
    tree: dict = field(default_factory=dict)
    dbfs: dict = field(default_factory=dict)

    @property
    def admin(self) -> str:
        admins = next(g for g in self.principals["groups"] if g["displayName"] == "admins")
        ids = {m["value"] for m in admins["members"]}
        return next(u["userName"] for u in self.principals["users"] if u["id"] in ids)

    def user(self, name: str) -> dict:
        return next(u for u in self.principals["users"] if u["userName"] == name)

    def under(self, prefix: str) -> list[TreeEntry]:
        return [e for p, e in sorted(self.tree.items()) if p.startswith(prefix.rstrip("/") + "/")]


def _json(root: pathlib.Path, name: str, default):
    p = root / name
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else default


def load(root: pathlib.Path) -> Seed:
    s = Seed(root=root)
    s.workspace = _json(root, "workspace.json", {})
    s.principals = _json(root, "principals.json", {"users": [], "groups": [], "service_principals": []})
    s.tokens = _json(root, "tokens.json", {"tokens": [], "oauth_clients": []})
    s.objects = _json(root, "objects.json", {})
    s.repos = _json(root, "repos.json", [])
    s.git_credentials = _json(root, "git_credentials.json", [])
    s.secrets = _json(root, "secrets.json", {"scopes": []})
    s.permissions = _json(root, "permissions.json", [])
    s.hive = _json(root, "hive.json", {"databases": [], "grants": []})
    s.uc = _json(root, "unity_catalog.json", {"grants": []})
    s.compute = _json(root, "compute.json", {})
    s.mounts = _json(root, "mounts.json", [])
    for p in sorted((root / "jobs").glob("*.json")) if (root / "jobs").is_dir() else []:
        job = json.loads(p.read_text(encoding="utf-8"))
        s.jobs[job["job_id"]] = job
    models = root / "models"
    if models.is_dir():
        for m in sorted(models.iterdir()):
            model = json.loads((m / "model.json").read_text(encoding="utf-8"))
            versions = {}
            for v in sorted((m / "versions").iterdir()) if (m / "versions").is_dir() else []:
                version = json.loads((v / "version.json").read_text(encoding="utf-8"))
                art = v / "artifacts"
                version["_artifacts"] = {
                    str(f.relative_to(art)): f.read_bytes() for f in sorted(art.rglob("*")) if f.is_file()
                } if art.is_dir() else {}
                versions[version["version"]] = version
            model["_versions"] = versions
            s.models[model["name"]] = model
    ws = root / "workspace"
    if ws.is_dir():
        for p in sorted(ws.rglob("*")):
            rel = "/" + "/".join(unescape(part) for part in p.relative_to(ws).parts)
            if p.is_dir():
                s.tree[rel] = TreeEntry(rel, "DIRECTORY")
                continue
            data = p.read_bytes()
            lang = HEADERS.get(p.suffix)
            if lang and data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r") == lang[1]:
                path = rel[: -len(p.suffix)]
                s.tree[path] = TreeEntry(path, "NOTEBOOK", lang[0], data)
            else:
                s.tree[rel] = TreeEntry(rel, "FILE", None, data)
    for path, meta in s.objects.items():
        if meta.get("object_type") == "DIRECTORY" and path not in s.tree:
            s.tree[path] = TreeEntry(path, "DIRECTORY")
    dbfs = root / "dbfs"
    if dbfs.is_dir():
        for p in sorted(dbfs.rglob("*")):
            if p.is_file():
                s.dbfs["/" + str(p.relative_to(dbfs))] = p.read_bytes()
    return s


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
