"""The file store: streamed multipart uploads, content-addressed blobs, safe names, the size
limit, upload tokens that grant nothing else, and a token upload that deploys a file."""

import dataclasses
import hashlib
import os
import tempfile
import tracemalloc
import urllib.parse
import uuid as uuidlib

import pytest
import requests

from api.server.app import create_app
from engine.store.db import database
from engine.store.models import FileServer, Task
from tests.cluster import Cluster
from tests.conftest import Api
from tests.test_jobs import cmd_step

BOUNDARY = "opsjobtestboundary7d1f"


def multipart(files, fields=None):
    """Return (body, content type) for ``files`` [(field, file name, bytes)] and fields."""
    out = []
    for name, value in (fields or {}).items():
        out.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for field, filename, data in files:
        if filename.isascii() and '"' not in filename and "\\" not in filename:
            disposition = f'filename="{filename}"'
        else:
            disposition = "filename*=UTF-8''" + urllib.parse.quote(filename, safe="")
        out.append(
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
                f"{disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={BOUNDARY}"


def upload(api, path, files, key="admin", headers=None, params=None):
    body, ctype = multipart(files)
    return api.call(
        "POST",
        path,
        key=key,
        body=body,
        params=params,
        headers={"Content-Type": ctype, **(headers or {})},
    )


def blob(settings, data):
    sha = hashlib.sha256(data).hexdigest()
    return os.path.join(settings.home, "filestore", "blobs", sha[:2], sha)


def leftovers(settings):
    folder = os.path.join(settings.home, "filestore", "tmp")
    return os.listdir(folder) if os.path.isdir(folder) else []


def rows(pid=1):
    with database.connection_context():
        return list(FileServer.select().where(FileServer.projectid == pid))


def test_upload_list_download_replace_delete(api, settings):
    r = upload(
        api, "/fileserver/1", [("file", "a.txt", b"alpha\n"), ("file", "b.bin", b"\x00\xff")]
    )
    assert r.status_code == 200 and r.json["data"] == 2, r.text
    listed = api.ok("GET", "/fileserver/1")
    by_name = {f["name"]: f for f in listed}
    assert set(by_name) == {"a.txt", "b.bin"}
    a = by_name["a.txt"]
    assert a["size"] == 6 and a["md5"] == hashlib.md5(b"alpha\n").hexdigest()
    assert a["create_user"] == "root" and a["edit_user"] == "root" and a["create_time"]
    assert set(a) == {
        "id",
        "name",
        "size",
        "md5",
        "create_user",
        "create_time",
        "edit_user",
        "edit_time",
    }
    with open(blob(settings, b"alpha\n"), "rb") as f:
        assert f.read() == b"alpha\n"

    got = api.get("/fileserver/1/download", params={"name": "b.bin", "stream": 1})
    assert got.status_code == 200 and got.content == b"\x00\xff"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert 'filename="b.bin"' in got.headers["content-disposition"]

    # Re-uploading a name replaces the row (a new id), as OpenC3's REPLACE does.
    assert upload(api, "/fileserver/1", [("file", "a.txt", b"beta\n")]).json["data"] == 1
    again = {f["name"]: f for f in api.ok("GET", "/fileserver/1")}
    assert again["a.txt"]["id"] != a["id"] and again["a.txt"]["size"] == 5
    assert (
        api.get("/fileserver/1/download", params={"name": "a.txt", "stream": 1}).content
        == b"beta\n"
    )
    assert len([r for r in rows() if r.name == "a.txt"]) == 1

    assert api.ok("DELETE", f"/fileserver/1/{again['a.txt']['id']}") is True
    assert [f["name"] for f in api.ok("GET", "/fileserver/1")] == ["b.bin"]
    assert (
        api.get("/fileserver/1/download", params={"name": "a.txt", "stream": 1}).status_code == 404
    )
    assert api.delete(f"/fileserver/1/{again['a.txt']['id']}").status_code == 404
    deleted = [r for r in rows() if r.status == "deleted"]
    assert len(deleted) == 1 and deleted[0].edit_user == "root"  # soft: the row stays
    assert os.path.isfile(blob(settings, b"beta\n"))  # and so does the blob

    # Files are per project: project 2 sees none of them.
    assert api.ok("GET", "/fileserver/2") == []
    assert (
        api.get("/fileserver/2/download", params={"name": "b.bin", "stream": 1}).status_code == 404
    )
    assert leftovers(settings) == []


def test_roles(api):
    reader, writer = api.user("reader", 1, "read"), api.user("writer", 1, "write")
    assert upload(api, "/fileserver/1", [("file", "x", b"x")], key=reader).status_code == 403
    assert upload(api, "/fileserver/1", [("file", "x", b"x")], key=writer).status_code == 200
    assert api.get("/fileserver/1", key=reader).status_code == 200
    # Download only reads, so read is enough (OpenC3 asks for write).
    got = api.get("/fileserver/1/download", key=reader, params={"name": "x", "stream": 1})
    assert got.status_code == 200 and got.content == b"x"
    fid = api.ok("GET", "/fileserver/1")[0]["id"]
    assert api.delete(f"/fileserver/1/{fid}", key=writer).status_code == 403
    assert upload(api, "/fileserver/2", [("file", "x", b"x")], key=writer).status_code == 403


BAD_NAMES = [
    "../escape.txt",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b.txt",
    "..",
    ".",
    "a\\..\\b",
    "C:\\temp\\x",
    "nul\x00byte",
    "line\nbreak",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_a_name_never_escapes_the_store(api, settings, name):
    r = upload(api, "/fileserver/1", [("upfile", name, b"payload")])
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json["info"].startswith("upfile:"), r.json  # names the file field
    assert rows() == [] and leftovers(settings) == []
    r = api.get("/fileserver/1/download", params={"name": name, "stream": 1})
    assert r.status_code == 400 and r.json["info"].startswith("name:"), r.text


def test_a_bad_name_anywhere_stores_nothing(api, settings):
    r = upload(api, "/fileserver/1", [("file", "good.txt", b"ok"), ("file", "../bad", b"no")])
    assert r.status_code == 400
    assert rows() == [] and leftovers(settings) == []


def test_bad_requests(api, settings):
    r = api.post("/fileserver/1", json={"x": 1})
    assert r.status_code == 400 and r.json["info"].startswith("file:")
    body, ctype = multipart([], fields={"note": "no file here"})
    r = api.call("POST", "/fileserver/1", body=body, headers={"Content-Type": ctype})
    assert r.status_code == 400 and r.json["info"].startswith("file:"), r.text
    r = api.call(
        "POST",
        "/fileserver/1",
        body=b"--x\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 400 and r.json["info"].startswith("file:"), r.text
    # A body cut off inside a file: the parse error surfaces while the file streams.
    cut, ctype = multipart([("file", "cut.bin", b"y" * 300_000)])
    r = api.call("POST", "/fileserver/1", body=cut[:200_000], headers={"Content-Type": ctype})
    assert r.status_code == 400 and r.json["info"].startswith("file:"), r.text
    assert rows() == [] and leftovers(settings) == []
    assert api.get("/fileserver/1/download").json["info"].startswith("name:")
    assert api.delete("/fileserver/1/abc").status_code == 404


@pytest.fixture
def small(settings):
    """The API with an upload limit of 1000 bytes."""
    return Api(create_app(dataclasses.replace(settings, max_upload=1000)))


def test_oversized_uploads_are_413(small, settings):
    ok = upload(small, "/fileserver/1", [("file", "fits", b"x" * 1000)])
    assert ok.status_code == 200, ok.text
    # Streamed: the limit is seen while the file arrives.
    r = upload(small, "/fileserver/1", [("file", "big", b"x" * 1001)])
    assert r.status_code == 413 and r.json["info"].startswith("file:"), r.text
    # All files of a request together count against the limit.
    r = upload(small, "/fileserver/1", [("file", "p1", b"x" * 600), ("file", "p2", b"x" * 600)])
    assert r.status_code == 413, r.text
    # A body announced far over the limit is refused before it is read.
    r = upload(small, "/fileserver/1", [("file", "huge", b"x" * 400_000)])
    assert r.status_code == 413 and "limit" in r.json["info"], r.text
    assert [f["name"] for f in small.ok("GET", "/fileserver/1")] == ["fits"]
    assert leftovers(settings) == []


def test_upload_streams_to_disk(api, settings):
    """A 48 MiB upload never sits in memory: the request's peak allocation stays small."""
    size = 48 * 1024 * 1024
    head, ctype = multipart([("file", "big.bin", b"")])
    head = head[: head.rindex(b"\r\n--")]  # the part headers, up to where the data goes
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    digest = hashlib.md5()
    with tempfile.TemporaryFile() as body:
        body.write(head)
        chunk = os.urandom(1024 * 1024)
        for _ in range(size // len(chunk)):
            body.write(chunk)
            digest.update(chunk)
        body.write(tail)
        length = body.tell()
        body.seek(0)
        tracemalloc.start()
        try:
            r = api.client.simulate_request(
                "POST",
                "/fileserver/1",
                headers={
                    "Authorization": f"Bearer {api.admin}",
                    "Content-Type": ctype,
                    "Content-Length": str(length),
                },
                extras={"wsgi.input": body},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert r.status_code == 200, r.text
    row = api.ok("GET", "/fileserver/1")[0]
    assert row["size"] == size and row["md5"] == digest.hexdigest()
    assert peak < 12 * 1024 * 1024, f"peak {peak} bytes while receiving {size}"


# -- upload tokens ------------------------------------------------------------------------------

TOKEN = "Tk7pQ2vX9mLr4sWz8yNb3cFh6jGd5eAa"


def add_token(api, pid=1, token=TOKEN, isjob=False, jobname=""):
    api.ok("POST", f"/token/{pid}", json={"token": token, "isjob": isjob, "jobname": jobname})


def token_upload(api, files, token=TOKEN, pid=1, params=None):
    headers = {"token": token} if token is not None else {}
    return upload(api, f"/fileserver/{pid}/upload", files, key=None, headers=headers, params=params)


def test_token_upload(api, settings):
    add_token(api)
    r = token_upload(api, [("file", "pkg-1.0.tgz", b"v1")])
    assert r.status_code == 200 and r.json["data"] == 1 and r.json["uuids"] == [], r.text
    row = api.ok("GET", "/fileserver/1")[0]
    assert row["edit_user"] == f"{TOKEN[:8]}@token" == row["create_user"]
    r = token_upload(api, [("file", "pkg-1.1.tgz", b"v11")], params={"user": "ci-bot"})
    assert r.status_code == 200
    row = {f["name"]: f for f in api.ok("GET", "/fileserver/1")}["pkg-1.1.tgz"]
    assert row["create_user"] == "ci-bot" and row["edit_user"] == f"{TOKEN[:8]}@token"

    good = hashlib.md5(b"v2").hexdigest()
    r = token_upload(api, [("file", "pkg-2.tgz", b"v2")], params={"checkmd5": "0" * 32})
    assert r.status_code == 400 and r.json["info"].startswith("checkmd5"), r.text
    assert "pkg-2.tgz" not in [f["name"] for f in api.ok("GET", "/fileserver/1")]
    r = token_upload(api, [("file", "pkg-2.tgz", b"v2")], params={"checkmd5": good})
    assert r.status_code == 200, r.text
    assert leftovers(settings) == []


def test_wrong_tokens_are_refused(api, settings):
    add_token(api)
    add_token(api, pid=2, token="OtherProjectToken0000000000000002")
    deleted = "DeletedToken000000000000000000003"
    add_token(api, token=deleted)
    tid = [t for t in api.ok("GET", "/token/1/info") if t["token"].startswith("Dele")][0]["id"]
    api.ok("DELETE", f"/token/1/{tid}")
    for token in (
        None,
        "",
        "NotAToken0000000000000000000000000",
        TOKEN.lower(),
        "OtherProjectToken0000000000000002",  # a token of project 2
        deleted,
        "short",
        TOKEN + "'; --",
    ):
        r = token_upload(api, [("file", "x.txt", b"x")], token=token)
        assert r.status_code == 403 and r.json["info"].startswith("token"), (token, r.text)
    # A valid token of project 1 does not open project 2's store.
    r = token_upload(api, [("file", "x.txt", b"x")], pid=2)
    assert r.status_code == 403
    assert rows(1) == [] and rows(2) == [] and leftovers(settings) == []


def test_a_token_grants_nothing_else(api):
    add_token(api)
    assert token_upload(api, [("file", "a.txt", b"a")]).status_code == 200
    fid = api.ok("GET", "/fileserver/1")[0]["id"]
    jobuuid = api.post("/jobs/1", json={"name": "j", "permanent": 1, "data": [cmd_step()]}).json[
        "uuid"
    ]
    attempts = [
        ("GET", "/fileserver/1", None),
        ("GET", "/fileserver/1/download?name=a.txt", None),
        ("POST", "/fileserver/1", None),
        ("DELETE", f"/fileserver/1/{fid}", None),
        ("GET", "/jobs/1", None),
        ("GET", "/token/1/info", None),
        ("POST", "/task/1/job", {"jobuuid": jobuuid}),
        ("POST", "/task/1/job/byname", {"jobname": "j"}),
        ("GET", "/task/1", None),
        ("POST", "/cmd/1", {"node": "a", "cmd": "id"}),
        ("POST", "/third/interface/invoke", {"project_id": 1}),
    ]
    for how in (
        {"token": TOKEN},
        {"Authorization": f"Bearer {TOKEN}"},
        {"appname": "root", "appkey": TOKEN},
    ):
        for method, path, body in attempts:
            r = api.call(method, path, key=None, json=body, headers=how)
            assert r.status_code == 401, (how, method, path, r.status_code, r.text)
    with database.connection_context():
        assert Task.select().count() == 0


def test_job_token_starts_its_job(api):
    job = api.post(
        "/jobs/1",
        json={"name": "deploy", "permanent": 1, "data": [cmd_step(scripts_argv="$version")]},
    ).json["uuid"]
    add_token(api, isjob=True, jobname="deploy")
    r = token_upload(api, [("file", "app-3.2.tgz", b"bits")])
    assert r.status_code == 200 and len(r.json["uuids"]) == 1, r.text
    task = api.ok("GET", f"/task/1/{r.json['uuids'][0]}")
    assert task["jobuuid"] == job and task["calltype"] == "api"
    assert task["user"] == f"{TOKEN[:8]}@token" and task["status"] == "init"
    assert task["variable"].strip() == "version: app-3.2.tgz"
    r = token_upload(api, [("file", "app-3.3.tgz", b"bits")], params={"user": "release"})
    assert api.ok("GET", f"/task/1/{r.json['uuids'][0]}")["user"] == "release"


# -- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "files")
    c.serve()
    c.worker()
    c.add_nodes(1, ssh_nodes.ensure(3))
    yield c
    c.close()


@pytest.mark.slow
def test_token_upload_deploys_to_two_nodes(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[1:3]
    tag = f"/tmp/fs-{uuidlib.uuid4().hex[:8]}"
    steps = [
        {
            "plugin_type": "scp",
            "name": "distribute",
            "src_type": "fileserver",
            "sp": "$version",
            "dst_type": "builtin",
            "dst": f"{a},{b}",
            "dp": f"{tag}/",
        }
    ]
    cluster.ok("POST", "/jobs/1", {"name": "ship", "permanent": 1, "data": steps})
    token = "ShipToken" + uuidlib.uuid4().hex[:23]
    cluster.ok("POST", "/token/1", {"token": token, "isjob": True, "jobname": "ship"})
    data = os.urandom(300_000)
    name = "release-1.4.2.tar.gz"
    r = requests.post(
        f"{cluster.url}/fileserver/1/upload",
        files={"file": (name, data)},
        headers={"token": token},
        params={"checkmd5": hashlib.md5(data).hexdigest()},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["data"] == 1, r.text
    task = r.json()["uuids"][0]
    done = cluster.wait(1, task)
    assert done["status"] == "success", cluster.ok("GET", f"/slave/any/tasklog/{task}")
    want = hashlib.md5(data).hexdigest()
    for node in (a, b):
        out = ssh_nodes.ssh(node, f"md5sum {tag}/{name}").stdout.split()[0]
        assert out == want, node
    # A wrong token over HTTP is refused too, and stores nothing.
    r = requests.post(
        f"{cluster.url}/fileserver/1/upload",
        files={"file": ("other.bin", b"x")},
        headers={"token": "WrongToken" + "0" * 22},
        timeout=30,
    )
    assert r.status_code == 403
    assert [f["name"] for f in cluster.ok("GET", "/fileserver/1")["data"]] == [name]
