"""DBFS (put, read, list, create/add-block/close, the SDK's chunked upload and download, mounts)
and the Files API (upload, download, metadata, directories, paging)."""
from __future__ import annotations

import base64
import io
import os

from databricks.sdk.errors import AlreadyExists, BadRequest, InvalidParameterValue, NotFound, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.files import DbfsAPI

from harness import Ctx, by, case, eq, ok, raises

MIB = 1024 * 1024


def base(ctx: Ctx) -> str:
    return f"/tmp/sdkconf-{ctx.run_id}"


def vol(ctx: Ctx) -> str:
    return f"/Volumes/science_hub/ocean/raw/sdkconf-{ctx.run_id}"


@case("dbfs: seed files list, stat and read back; mount points appear under /mnt")
def dbfs_seeded(ctx: Ctx):
    for path, data in ctx.seed.dbfs.items():
        st = ctx.w.dbfs.get_status(path)
        eq((st.path, st.is_dir, st.file_size), (path, False, len(data)), f"get-status {path}")
        ok(st.modification_time and st.modification_time > 0, f"{path} modification_time")
        r = ctx.w.dbfs.read(path)
        eq((r.bytes_read, base64.b64decode(r.data)), (len(data), data), f"read {path}")
        r = ctx.w.dbfs.read(path, offset=3, length=5)
        eq(base64.b64decode(r.data), data[3:8], f"read {path} offset=3 length=5")
        parent = path.rsplit("/", 1)[0]
        ok(path in {f.path for f in ctx.w.dbfs.list(parent)}, f"{path} not listed in {parent}")
        eq(ctx.w.dbfs.download(path).read(), data, f"SDK download {path}")
    listed = {f.path for f in ctx.w.dbfs.list("/mnt")}
    for m in ctx.seed.mounts:
        ok(m["mount_point"] in listed, f"mount {m['mount_point']} not listed under /mnt: {listed}")
    raises(ResourceDoesNotExist, lambda: ctx.w.dbfs.get_status("/no/such/file"))
    p = next(iter(ctx.seed.dbfs))
    raises(BadRequest, lambda: ctx.w.dbfs.read(p, length=MIB + 1), code="MAX_READ_SIZE_EXCEEDED")
    raises(InvalidParameterValue, lambda: ctx.w.dbfs.read(p.rsplit("/", 1)[0]))


@case("dbfs put: JSON base64, overwrite rules")
def dbfs_put(ctx: Ctx):
    p = f"{base(ctx)}/put.bin"
    data = bytes(range(256))
    ctx.w.dbfs.mkdirs(base(ctx))
    ctx.w.dbfs.put(p, contents=base64.b64encode(data).decode())
    eq(base64.b64decode(ctx.w.dbfs.read(p).data), data, "read after put")
    raises(ResourceAlreadyExists, lambda: ctx.w.dbfs.put(p, contents=base64.b64encode(b"x").decode()))
    ctx.w.dbfs.put(p, contents=base64.b64encode(b"new").decode(), overwrite=True)
    eq(base64.b64decode(ctx.w.dbfs.read(p).data), b"new", "read after overwrite")
    # The multipart form of put (legacy CLI): raw bytes in a part named `contents`.
    ctx.w.api_client.do("POST", "/api/2.0/dbfs/put", files={"contents": ("c", data[::-1])},
                        data={"path": f"{base(ctx)}/multipart.bin", "overwrite": "true"})
    eq(base64.b64decode(ctx.w.dbfs.read(f"{base(ctx)}/multipart.bin").data), data[::-1], "multipart put")


@case("dbfs streaming: create → add-block ×3 → close; reading in steps; block over 1 MB refused")
def dbfs_blocks(ctx: Ctx):
    p = f"{base(ctx)}/blocks.bin"
    blocks = [os.urandom(700_000), os.urandom(MIB), b"tail"]
    h = ctx.w.dbfs.create(p).handle
    ok(isinstance(h, int), f"handle {h!r}")
    for b in blocks:
        ctx.w.dbfs.add_block(h, base64.b64encode(b).decode())
    ctx.w.dbfs.close(h)
    whole = b"".join(blocks)
    eq(ctx.w.dbfs.get_status(p).file_size, len(whole), "file_size")
    got, off = b"", 0
    while off < len(whole):
        r = ctx.w.dbfs.read(p, offset=off, length=MIB)
        got += base64.b64decode(r.data)
        off += r.bytes_read
        ok(r.bytes_read > 0, "read made no progress")
    eq(got, whole, "content read back in 1 MB steps")
    eq(ctx.w.dbfs.read(p, offset=len(whole)).bytes_read, 0, "read at EOF")
    h = ctx.w.dbfs.create(f"{base(ctx)}/big-block.bin").handle
    raises(BadRequest, lambda: ctx.w.dbfs.add_block(h, base64.b64encode(b"x" * (MIB + 1)).decode()),
           code="MAX_BLOCK_SIZE_EXCEEDED")
    ctx.w.dbfs.close(h)
    raises(ResourceDoesNotExist, lambda: ctx.w.dbfs.add_block(987654321, base64.b64encode(b"x").decode()))
    raises(ResourceAlreadyExists, lambda: ctx.w.dbfs.create(p))


@case("dbfs SDK helpers: upload 2.5 MB (chunked), download, list, move, delete rules")
def dbfs_helpers(ctx: Ctx):
    p = f"{base(ctx)}/sub/upload.bin"
    data = os.urandom(2 * MIB + MIB // 2)
    ctx.w.dbfs.mkdirs(f"{base(ctx)}/sub")
    ctx.w.dbfs.upload(p, io.BytesIO(data))
    eq(ctx.w.dbfs.download(p).read(), data, "download after upload")
    listing = by(ctx.w.dbfs.list(base(ctx)), lambda f: f.path)
    eq(sorted(listing), sorted(f"{base(ctx)}/{n}" for n in ("big-block.bin", "blocks.bin", "multipart.bin", "put.bin", "sub")),
       "listing")
    ok(listing[f"{base(ctx)}/sub"].is_dir, "sub is not a directory")
    ctx.w.dbfs.move(p, f"{base(ctx)}/moved.bin")
    raises(ResourceDoesNotExist, lambda: ctx.w.dbfs.get_status(p))
    eq(ctx.w.dbfs.get_status(f"{base(ctx)}/moved.bin").file_size, len(data), "moved file")
    ctx.w.dbfs.put(f"{base(ctx)}/sub/keep.txt", contents=base64.b64encode(b"k").decode())
    # DbfsExt.delete refuses a folder without recursive before any request; the API must too.
    e = raises(BadRequest, lambda: DbfsAPI(ctx.w.api_client).delete(f"{base(ctx)}/sub"))
    eq(e.error_code, "IO_ERROR", "error_code of a non-recursive delete of a non-empty folder")
    ctx.w.dbfs.delete(base(ctx), recursive=True)
    raises(ResourceDoesNotExist, lambda: ctx.w.dbfs.get_status(base(ctx)))


@case("files API: directories, upload, download with headers, metadata, overwrite rules")
def files_basic(ctx: Ctx):
    d = vol(ctx)
    ctx.w.files.create_directory(f"{d}/sub dir")
    ctx.w.files.get_directory_metadata(f"{d}/sub dir")
    data = os.urandom(300_000)
    ctx.w.files.upload(f"{d}/sub dir/data file.bin", io.BytesIO(data), overwrite=False)
    r = ctx.w.files.download(f"{d}/sub dir/data file.bin")
    eq(r.contents.read(), data, "download")
    eq(r.content_length, len(data), "content_length")
    ok(r.last_modified, "no Last-Modified")
    m = ctx.w.files.get_metadata(f"{d}/sub dir/data file.bin")
    eq(m.content_length, len(data), "metadata content_length")
    raises(AlreadyExists, lambda: ctx.w.files.upload(
        f"{d}/sub dir/data file.bin", io.BytesIO(b"x"), overwrite=False))
    ctx.w.files.upload(f"{d}/sub dir/data file.bin", io.BytesIO(b"replaced"), overwrite=True)
    eq(ctx.w.files.download(f"{d}/sub dir/data file.bin").contents.read(), b"replaced", "after overwrite")
    raises(NotFound, lambda: ctx.w.files.download(f"{d}/missing.bin").contents.read())
    raises(NotFound, lambda: ctx.w.files.get_metadata(f"{d}/missing.bin"))


@case("files API without the experimental client: plain PUT and GET; directory listing pages")
def files_plain_and_paging(ctx: Ctx):
    w = ctx.make_client(ctx.host, token=ctx.token, disable_experimental_files_api_client=True)
    d = vol(ctx)
    names = [f"f{i:02d}.txt" for i in range(7)]
    for n in names:
        w.files.upload(f"{d}/{n}", io.BytesIO(n.encode()), overwrite=True)
    eq(w.files.download(f"{d}/f03.txt").contents.read(), b"f03.txt", "plain download")
    entries = list(ctx.w.files.list_directory_contents(d, page_size=3))
    got = by(entries, lambda e: e.name)
    eq(sorted(got), sorted(names + ["sub dir"]), "listing across pages")
    eq((got["f01.txt"].path, got["f01.txt"].is_directory, got["f01.txt"].file_size),
       (f"{d}/f01.txt", False, 7), "file entry")
    ok(got["f01.txt"].last_modified and got["f01.txt"].last_modified > 0, "last_modified")
    eq(got["sub dir"].is_directory, True, "directory entry")
    first = ctx.w.api_client.do("GET", f"/api/2.0/fs/directories{d}", query={"page_size": 3})
    eq(len(first["contents"]), 3, "first page size")
    ok(first.get("next_page_token"), "no next_page_token on the first page")


@case("files API: delete files, then the directories; missing directory → NotFound")
def files_delete(ctx: Ctx):
    d = vol(ctx)
    for e in list(ctx.w.files.list_directory_contents(d)):
        if not e.is_directory:
            ctx.w.files.delete(e.path)
    ctx.w.files.delete(f"{d}/sub dir/data file.bin")
    ctx.w.files.delete_directory(f"{d}/sub dir")
    ctx.w.files.delete_directory(d)
    raises(NotFound, lambda: ctx.w.files.get_directory_metadata(d))
    raises(NotFound, lambda: list(ctx.w.files.list_directory_contents(d)))
