"""Workspace API: list, get-status, export in every format, import (JSON and multipart), mkdirs,
delete, and the error classes of each."""
from __future__ import annotations

import base64
import io
import json
import zipfile

from databricks.sdk.errors import (BadRequest, InvalidParameterValue, PermissionDenied, ResourceAlreadyExists,
                                   ResourceDoesNotExist)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

from harness import Ctx, by, case, eq, ok, raises

EXT = {"PYTHON": "py", "SCALA": "scala", "SQL": "sql", "R": "r"}


def home(ctx: Ctx) -> str:
    return f"/Users/{ctx.seed.admin}"


def scratch(ctx: Ctx) -> str:
    return f"{home(ctx)}/sdkconf-{ctx.run_id}"


def find_notebook(ctx: Ctx, language: str, prefix: str = "/Users/"):
    return next(e for e in ctx.seed.under(prefix) if e.kind == "NOTEBOOK" and e.language == language
                and not e.path.startswith("/Repos/"))


@case("list /: the top-level folders")
def list_root(ctx: Ctx):
    got = by(ctx.w.workspace.list("/"), lambda o: o.path)
    for p in ("/Users", "/Shared", "/Repos"):
        ok(p in got, f"{p} missing from list /: {sorted(got)}")
        eq(got[p].object_type, ObjectType.DIRECTORY, f"{p} object_type")
        ok(isinstance(got[p].object_id, int) and got[p].object_id > 0, f"{p} object_id {got[p].object_id!r}")


@case("list recursive (SDK BFS): every seed notebook, file and folder with its type and language")
def list_recursive(ctx: Ctx):
    for top in ("/Users", "/Shared"):
        got = by(ctx.w.workspace.list(top, recursive=True), lambda o: o.path)
        want = [e for e in ctx.seed.under(top) if e.kind != "DIRECTORY"]
        for e in want:
            o = got.get(e.path)
            ok(o is not None, f"{e.path} missing from recursive list of {top}")
            eq(o.object_type.value, e.kind, f"{e.path} object_type")
            eq(o.language.value if o.language else None, e.language, f"{e.path} language")
            if e.kind == "FILE":
                eq(o.size, len(e.content), f"{e.path} size")
        eq(len(got), len(want), f"number of non-directory objects under {top} "
           f"(extra: {sorted(set(got) - {e.path for e in want})[:5]})")
    ids = [o.object_id for o in ctx.w.workspace.list("/Shared", recursive=True)]
    eq(len(ids), len(set(ids)), "object ids are unique")


@case("list: an empty folder lists nothing; a repo root is REPO and is not descended")
def list_empty_and_repo(ctx: Ctx):
    empties = [p for p, m in ctx.seed.objects.items() if m.get("object_type") == "DIRECTORY"]
    ok(empties, "the seed plants no empty folder")
    for p in empties:
        eq(list(ctx.w.workspace.list(p)), [], f"list {p}")
        eq(ctx.w.workspace.get_status(p).object_type, ObjectType.DIRECTORY, f"{p} object_type")
    for r in ctx.seed.repos:
        parent = r["path"].rsplit("/", 1)[0]
        got = by(ctx.w.workspace.list(parent), lambda o: o.path)
        eq(got[r["path"]].object_type, ObjectType.REPO, f"{r['path']} object_type")
        eq(got[r["path"]].object_id, r["id"], f"{r['path']} object_id = repo id")


@case("get-status: ids and times from objects.json; unicode, escaped and case-twin names")
def get_status_seeded(ctx: Ctx):
    for path, meta in ctx.seed.objects.items():
        o = ctx.w.workspace.get_status(path)
        eq(o.path, path, "path")
        if "object_id" in meta:
            eq(o.object_id, meta["object_id"], f"{path} object_id")
        for f in ("created_at", "modified_at"):
            if f in meta and o.object_type != ObjectType.DIRECTORY:
                eq(getattr(o, f), meta[f], f"{path} {f}")
    for e in ctx.seed.tree.values():
        if any(c in e.path for c in "?:|") or any(ord(c) > 127 for c in e.path):
            o = ctx.w.workspace.get_status(e.path)
            eq((o.path, o.object_type.value), (e.path, e.kind), f"get-status {e.path!r}")
    twins = [(p, q) for p in ctx.seed.tree for q in ctx.seed.tree
             if p < q and p.rsplit("/", 1)[0] == q.rsplit("/", 1)[0] and p.lower() == q.lower()]
    ok(twins, "the seed plants no case-twin names")
    for p, q in twins:
        a, b = ctx.w.workspace.get_status(p), ctx.w.workspace.get_status(q)
        ok(a.object_id != b.object_id, f"{p} and {q} share object id {a.object_id}")
        eq((a.path, b.path), (p, q), "case-twin paths")


@case("get-status: a /Workspace prefix names the same object")
def get_status_workspace_prefix(ctx: Ctx):
    a = ctx.w.workspace.get_status("/Shared/etl")
    b = ctx.w.workspace.get_status("/Workspace/Shared/etl")
    eq(b.object_id, a.object_id, "object_id via /Workspace prefix")
    eq(b.object_type, ObjectType.DIRECTORY, "object_type")


@case("export SOURCE: every seed notebook round-trips byte for byte with its file_type")
def export_source_all(ctx: Ctx):
    for e in ctx.seed.tree.values():
        if e.kind != "NOTEBOOK":
            continue
        r = ctx.w.workspace.export(e.path, format=ExportFormat.SOURCE)
        eq(base64.b64decode(r.content), e.content, f"SOURCE export of {e.path}")
        eq(r.file_type, EXT[e.language], f"file_type of {e.path}")


@case("export: download (direct_download) returns workspace files byte for byte, binary and empty too")
def download_files(ctx: Ctx):
    files = [e for e in ctx.seed.tree.values() if e.kind == "FILE"]
    ok(any(len(e.content) == 0 for e in files), "the seed plants no 0-byte file")
    for e in files:
        got = ctx.w.workspace.download(e.path).read()
        eq(got, e.content, f"download of {e.path}")
        eq(ctx.w.workspace.get_status(e.path).size, len(e.content), f"size of {e.path}")


@case("export JUPYTER / HTML / DBC / R_MARKDOWN / AUTO of notebooks")
def export_formats(ctx: Ctx):
    py = find_notebook(ctx, "PYTHON")
    marker = py.content.decode().splitlines()[-1].strip()
    nb = json.loads(base64.b64decode(ctx.w.workspace.export(py.path, format=ExportFormat.JUPYTER).content))
    eq(nb.get("nbformat"), 4, "JUPYTER nbformat")
    code = "\n".join("".join(c.get("source", [])) for c in nb.get("cells", []))
    ok(marker in code, f"JUPYTER export of {py.path} lacks {marker!r}")
    html = base64.b64decode(ctx.w.workspace.export(py.path, format=ExportFormat.HTML).content).decode()
    ok("<html" in html.lower(), "HTML export is not HTML")
    dbc = zipfile.ZipFile(io.BytesIO(base64.b64decode(ctx.w.workspace.export(py.path, format=ExportFormat.DBC).content)))
    ok(dbc.testzip() is None and dbc.namelist(), "DBC export is not a valid, non-empty zip")
    commands = [c.get("command", "") for n in dbc.namelist() for c in json.loads(dbc.read(n)).get("commands", [])]
    ok(any(marker in c for c in commands), f"DBC export lacks the code {marker!r}")
    r = find_notebook(ctx, "R")
    rmd = base64.b64decode(ctx.w.workspace.export(r.path, format=ExportFormat.R_MARKDOWN).content).decode()
    ok("```{r}" in rmd, "R_MARKDOWN export has no ```{r} chunk")
    auto = base64.b64decode(ctx.w.workspace.export(py.path, format=ExportFormat.AUTO).content)
    ok(marker.encode() in auto, "AUTO export of a notebook lacks the code")
    # The SDK's download mixin sends direct_download=true and gets raw bytes in any format.
    eq(ctx.w.workspace.download(py.path, format=ExportFormat.SOURCE).read(), py.content, "download SOURCE")


@case("export: a notebook over 10 MB with outputs → MAX_NOTEBOOK_SIZE_EXCEEDED, while SOURCE works")
def export_too_large(ctx: Ctx):
    big = [p for p, m in ctx.seed.objects.items() if m.get("outputs_bytes", 0) > 10 * 1024 * 1024]
    ok(big, "the seed plants no notebook over the export limit")
    for p in big:
        src = ctx.w.workspace.export(p, format=ExportFormat.SOURCE)
        eq(base64.b64decode(src.content), ctx.seed.tree[p].content, f"SOURCE export of {p}")
        for fmt in (ExportFormat.JUPYTER, ExportFormat.HTML, ExportFormat.DBC):
            raises(BadRequest, lambda: ctx.w.workspace.export(p, format=fmt), code="MAX_NOTEBOOK_SIZE_EXCEEDED")
        raises(BadRequest, lambda: ctx.w.workspace.download(p, format=ExportFormat.JUPYTER),
               code="MAX_NOTEBOOK_SIZE_EXCEEDED")


@case("export a folder: DBC and SOURCE give a zip of its notebooks only; HTML is refused")
def export_directory(ctx: Ctx):
    folder = "/Shared/common"
    want = {e.path.rsplit("/", 1)[1] for e in ctx.seed.under(folder) if e.kind == "NOTEBOOK"}
    ok(want, "seed has no notebooks in /Shared/common")
    for fmt in (ExportFormat.DBC, ExportFormat.SOURCE):
        z = zipfile.ZipFile(io.BytesIO(base64.b64decode(ctx.w.workspace.export(folder, format=fmt).content)))
        stems = {n.rsplit("/", 1)[-1].rsplit(".", 1)[0] for n in z.namelist() if not n.endswith("/")}
        eq(stems, want, f"{fmt.value} folder export entries ({z.namelist()})")
    raises(InvalidParameterValue, lambda: ctx.w.workspace.export(folder, format=ExportFormat.HTML))


@case("folder SOURCE archive: each entry is its notebook's own export; it imports back as a new folder, once")
def folder_archive_round_trip(ctx: Ctx):
    folder = "/Shared/common"
    notebooks = [e for e in ctx.seed.under(folder) if e.kind == "NOTEBOOK" and e.path.count("/") == 3]
    ok(len(notebooks) >= 1, "seed has no notebooks directly in /Shared/common")
    z = zipfile.ZipFile(io.BytesIO(base64.b64decode(
        ctx.w.workspace.export(folder, format=ExportFormat.SOURCE).content)))
    names = set(z.namelist())
    for e in notebooks:
        name = f"common/{e.path.rsplit('/', 1)[1]}.{EXT[e.language]}"
        ok(name in names, f"{name} not in the folder archive {sorted(names)}")
        eq(z.read(name), base64.b64decode(ctx.w.workspace.export(e.path, format=ExportFormat.SOURCE).content),
           f"{name}: archive bytes against the notebook's own export")
    ok(not any(n.endswith((".csv", ".txt", ".yaml", ".json")) for n in names), f"SOURCE carried files: {names}")
    # Import the archive as a new folder (SOURCE, no language): the same notebooks, the same bytes.
    target = f"{scratch(ctx)}/archive-copy"
    ctx.w.workspace.mkdirs(scratch(ctx))
    raw = ctx.w.workspace.export(folder, format=ExportFormat.SOURCE).content
    ctx.w.workspace.import_(target, content=raw, format=ImportFormat.SOURCE)
    got = by(ctx.w.workspace.list(target), lambda o: o.path.rsplit("/", 1)[1])
    for e in notebooks:
        leaf = e.path.rsplit("/", 1)[1]
        ok(leaf in got, f"{leaf} not imported: {sorted(got)}")
        eq((got[leaf].object_type, got[leaf].language.value), (ObjectType.NOTEBOOK, e.language), f"{leaf} type")
        eq(base64.b64decode(ctx.w.workspace.export(f"{target}/{leaf}").content),
           base64.b64decode(ctx.w.workspace.export(e.path).content), f"{leaf} bytes after the round trip")
    raises(ResourceAlreadyExists, lambda: ctx.w.workspace.import_(target, content=raw, format=ImportFormat.SOURCE))


@case("errors: get-status / list / export / delete of a missing path → ResourceDoesNotExist")
def missing_paths(ctx: Ctx):
    p = "/Shared/no such thing"
    e = raises(ResourceDoesNotExist, lambda: ctx.w.workspace.get_status(p), code="RESOURCE_DOES_NOT_EXIST")
    ok(p in str(e), f"message does not name the path: {e}")
    raises(ResourceDoesNotExist, lambda: list(ctx.w.workspace.list(p)))
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.export(p))
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.delete(p))


@case("mkdirs: creates parents, is idempotent, and refuses a file prefix")
def mkdirs(ctx: Ctx):
    base = scratch(ctx)
    ctx.w.workspace.mkdirs(f"{base}/a/b/c")
    ctx.w.workspace.mkdirs(f"{base}/a/b/c")
    for p in (base, f"{base}/a", f"{base}/a/b", f"{base}/a/b/c"):
        eq(ctx.w.workspace.get_status(p).object_type, ObjectType.DIRECTORY, f"{p} object_type")
    raises(ResourceAlreadyExists, lambda: ctx.w.workspace.mkdirs("/Shared/reference/pipeline.yaml/sub"))


NOTEBOOK_PY = b"# Databricks notebook source\nprint('conformance')\n\n# COMMAND ----------\n\nx = 41 + 1\n"


@case("import JSON SOURCE: create, read back, refuse duplicate, overwrite, missing parent, missing language")
def import_json(ctx: Ctx):
    base = scratch(ctx)
    p = f"{base}/imported nb"
    ctx.w.workspace.import_(p, content=base64.b64encode(NOTEBOOK_PY).decode(), format=ImportFormat.SOURCE,
                            language=Language.PYTHON)
    o = ctx.w.workspace.get_status(p)
    eq((o.object_type, o.language, o.path), (ObjectType.NOTEBOOK, Language.PYTHON, p), "imported notebook")
    ok(o.object_id > 0, "object_id")
    eq(base64.b64decode(ctx.w.workspace.export(p).content), NOTEBOOK_PY, "SOURCE read-back")
    raises(ResourceAlreadyExists, lambda: ctx.w.workspace.import_(
        p, content=base64.b64encode(NOTEBOOK_PY).decode(), format=ImportFormat.SOURCE, language=Language.PYTHON),
        code="RESOURCE_ALREADY_EXISTS")
    v2 = NOTEBOOK_PY.replace(b"41", b"40")
    ctx.w.workspace.import_(p, content=base64.b64encode(v2).decode(), format=ImportFormat.SOURCE,
                            language=Language.PYTHON, overwrite=True)
    eq(base64.b64decode(ctx.w.workspace.export(p).content), v2, "overwritten content")
    eq(ctx.w.workspace.get_status(p).object_id, o.object_id, "overwrite keeps the object id")
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.import_(
        f"{base}/no-parent/nb", content=base64.b64encode(NOTEBOOK_PY).decode(), format=ImportFormat.SOURCE,
        language=Language.PYTHON))
    raises(InvalidParameterValue, lambda: ctx.w.workspace.import_(
        f"{base}/no-language", content=base64.b64encode(NOTEBOOK_PY).decode(), format=ImportFormat.SOURCE))


@case("import JUPYTER: an .ipynb becomes a Python notebook")
def import_jupyter(ctx: Ctx):
    p = f"{scratch(ctx)}/from jupyter"
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"language_info": {"name": "python"}},
          "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": ["y = 'from ipynb'\n"]}]}
    ctx.w.workspace.import_(p, content=base64.b64encode(json.dumps(nb).encode()).decode(),
                            format=ImportFormat.JUPYTER)
    o = ctx.w.workspace.get_status(p)
    eq((o.object_type, o.language), (ObjectType.NOTEBOOK, Language.PYTHON), "notebook from ipynb")
    ok(b"y = 'from ipynb'" in base64.b64decode(ctx.w.workspace.export(p).content), "code lost")


@case("upload (multipart): AUTO notebook strips the extension; AUTO files keep name and bytes")
def upload_multipart(ctx: Ctx):
    base = scratch(ctx)
    sql = b"-- Databricks notebook source\nSELECT 1 AS one;\n"
    ctx.w.workspace.upload(f"{base}/query.sql", sql, format=ImportFormat.AUTO)
    o = ctx.w.workspace.get_status(f"{base}/query")
    eq((o.object_type, o.language), (ObjectType.NOTEBOOK, Language.SQL), "AUTO .sql with header")
    eq(ctx.w.workspace.download(f"{base}/query").read(), sql, "SQL notebook read-back")
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.get_status(f"{base}/query.sql"))
    binary = bytes(range(256)) * 3
    for name, data in (("data.csv", b"a,b\n1,2\n"), ("blob.bin", binary), ("empty.txt", b""),
                       ("plain.py", b"print('not a notebook')\n")):
        ctx.w.workspace.upload(f"{base}/{name}", data, format=ImportFormat.AUTO)
        o = ctx.w.workspace.get_status(f"{base}/{name}")
        eq((o.object_type, o.size), (ObjectType.FILE, len(data)), f"{name} status")
        eq(ctx.w.workspace.download(f"{base}/{name}").read(), data, f"{name} bytes")
    raises(ResourceAlreadyExists, lambda: ctx.w.workspace.upload(f"{base}/data.csv", b"x", format=ImportFormat.AUTO))
    ctx.w.workspace.upload(f"{base}/data.csv", b"x,y\n", format=ImportFormat.AUTO, overwrite=True)
    eq(ctx.w.workspace.download(f"{base}/data.csv").read(), b"x,y\n", "overwritten file")


@case("upload (multipart) SOURCE with a language: Scala and R notebooks; unicode names")
def upload_languages(ctx: Ctx):
    base = scratch(ctx)
    cases = [("Modèle ✓", Language.SCALA, b"// Databricks notebook source\nval n = 1\n"),
             ("rapport 雪", Language.R, b"# Databricks notebook source\nn <- 1\n")]
    for name, lang, data in cases:
        ctx.w.workspace.upload(f"{base}/{name}", data, format=ImportFormat.SOURCE, language=lang)
        o = ctx.w.workspace.get_status(f"{base}/{name}")
        eq((o.object_type, o.language, o.path), (ObjectType.NOTEBOOK, lang, f"{base}/{name}"), name)
        eq(ctx.w.workspace.download(f"{base}/{name}").read(), data, f"{name} read-back")
    listed = {o.path for o in ctx.w.workspace.list(base)}
    ok({f"{base}/{n}" for n, _, _ in cases} <= listed, f"unicode names missing from list: {listed}")


@case("import: content over 10 MB → MAX_NOTEBOOK_SIZE_EXCEEDED")
def import_too_large(ctx: Ctx):
    big = b"# Databricks notebook source\n" + b"# padding\n" * (1_100_000)
    raises(BadRequest, lambda: ctx.w.workspace.import_(
        f"{scratch(ctx)}/too big", content=base64.b64encode(big).decode(), format=ImportFormat.SOURCE,
        language=Language.PYTHON), code="MAX_NOTEBOOK_SIZE_EXCEEDED")


@case("delete: a non-empty folder needs recursive (DIRECTORY_NOT_EMPTY); recursive removes all")
def delete(ctx: Ctx):
    base = scratch(ctx)
    raises(BadRequest, lambda: ctx.w.workspace.delete(f"{base}/a"), code="DIRECTORY_NOT_EMPTY")
    ctx.w.workspace.delete(f"{base}/a/b/c")  # empty folder: no recursive needed
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.get_status(f"{base}/a/b/c"))
    ctx.w.workspace.delete(f"{base}/data.csv")
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.get_status(f"{base}/data.csv"))
    ctx.w.workspace.delete(base, recursive=True)
    for p in (base, f"{base}/a", f"{base}/imported nb"):
        raises(ResourceDoesNotExist, lambda: ctx.w.workspace.get_status(p))


@case("an ordinary user: another user's home folder → PermissionDenied; their own is readable")
def ordinary_user(ctx: Ctx):
    if not ctx.user_token:
        raise Skip("no ordinary user token in the seed")
    name = next(t["user_name"] for t in ctx.seed.tokens["tokens"] if t["token"] == ctx.user_token)
    u = ctx.make_client(ctx.host, token=ctx.user_token)
    mine = {e.path for e in ctx.seed.under(f"/Users/{name}") if e.kind != "DIRECTORY"}
    eq({o.path for o in u.workspace.list(f"/Users/{name}", recursive=True)}, mine, "own home, recursively")
    other = f"/Users/{ctx.seed.admin}"
    raises(PermissionDenied, lambda: list(u.workspace.list(other)), code="PERMISSION_DENIED")
    nb = next(e for e in ctx.seed.under(other) if e.kind == "NOTEBOOK")
    raises(PermissionDenied, lambda: u.workspace.export(nb.path), code="PERMISSION_DENIED")
