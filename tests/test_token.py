import hashlib

import pytest

from engine.access import tokens
from engine.store.db import database
from engine.store.models import Job, Token

SECRET = "Abcd1234efgh5678ijkl9012mnop3456"


def make_job(name, pid=1, status="permanent", uuid="jobuuid00001"):
    with database.connection_context():
        Job.create(projectid=pid, uuid=uuid, name=name, status=status)


def add(api, pid=1, key="admin", **fields):
    """POST a token; a field given as ``...`` is left out of the body."""
    body = {"token": SECRET, "describe": "ci upload", "isjob": False, "jobname": ""}
    body.update(fields)
    return api.post(f"/token/{pid}", json={k: v for k, v in body.items() if v is not ...}, key=key)


def test_token_lifecycle_never_shows_the_token(api):
    make_job("deploy")
    seen = []
    r = add(api)
    seen.append(r)
    assert r.status_code == 200 and r.json["data"] is True
    tid = r.json["id"]
    seen.append(add(api, token="Zyxw-9876.token_2", isjob=True, jobname="deploy", describe=""))
    for method in ("GET", "POST"):
        r = api.call(method, "/token/1/info")
        seen.append(r)
        rows = r.json["data"]
        assert [(t["token"], t["isjob"], t["jobname"], t["describe"]) for t in rows] == [
            ("Zyxw\u2026", True, "deploy", ""),
            ("Abcd\u2026", False, "", "ci upload"),
        ]
        assert set(rows[0]) == {
            "id",
            "token",
            "describe",
            "create_user",
            "create_time",
            "isjob",
            "jobname",
        }
        assert rows[1]["id"] == tid and rows[1]["create_user"] == "root"
    seen.append(api.delete(f"/token/1/{tid}"))
    assert seen[-1].json["data"] is True
    assert [t["jobname"] for t in api.ok("GET", "/token/1/info")] == ["deploy"]
    # the same token can be added again after a delete
    seen.append(add(api))
    assert seen[-1].status_code == 200
    seen.append(add(api))
    assert seen[-1].status_code == 409 and seen[-1].json["info"].startswith("token:")
    for r in seen:
        assert SECRET not in r.text and "Zyxw-9876.token_2" not in r.text
    with database.connection_context():
        stored = {(t.token_hash[:64], t.token_prefix, t.isjob) for t in Token.select()}
    assert (hashlib.sha256(SECRET.encode()).hexdigest(), "Abcd", 0) in stored
    assert all(SECRET not in str(t) for t in stored)


def test_token_filters_and_paging(api):
    for i in range(3):
        add(api, token=f"token-number-{i}")
    other = api.user("w1", 1, "write")
    add(api, token="token-by-w1", key=other)

    def listed(**q):
        return [t["token"] for t in api.ok("GET", "/token/1/info", params=q)]

    assert listed(create_user="w1") == ["toke\u2026"]
    assert len(listed(create_user="root")) == 3
    assert len(listed(pagesize="3")) == 3 and len(listed(pagesize="3", page="2")) == 1
    assert listed(create_time_end="2000-01-01") == []
    r = api.post("/token/1/info", json={"create_user": "w1"})
    assert [t["token"] for t in r.json["data"]] == ["toke\u2026"]


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("TRUE", True),
    ],
)
def test_isjob_accepted_forms(api, value, expected):
    make_job("deploy")
    r = add(api, isjob=value, jobname="deploy")
    assert r.status_code == 200, r.text
    assert api.ok("GET", "/token/1/info")[0]["isjob"] is expected


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"token": ...}, "token"),
        ({"token": ""}, "token"),
        ({"token": "short12"}, "token"),
        ({"token": "x" * 65}, "token"),
        ({"token": "has space 123"}, "token"),
        ({"token": "quote'123456"}, "token"),
        ({"token": ["Abcd1234efgh"]}, "token"),
        ({"describe": "d" * 201}, "describe"),
        ({"describe": {"a": 1}}, "describe"),
        ({"isjob": ...}, "isjob"),
        ({"isjob": None}, "isjob"),
        ({"isjob": ""}, "isjob"),
        ({"isjob": "yes"}, "isjob"),
        ({"isjob": 2}, "isjob"),
        ({"isjob": [True]}, "isjob"),
        ({"jobname": ...}, "jobname"),
        ({"jobname": None}, "jobname"),
        ({"isjob": True, "jobname": ""}, "jobname"),
        ({"isjob": True, "jobname": "nosuchjob"}, "jobname"),
        ({"isjob": True, "jobname": "gone"}, "jobname"),
        ({"isjob": True, "jobname": "theirs"}, "jobname"),
        ({"jobname": "j" * 201}, "jobname"),
    ],
)
def test_token_validation(api, fields, field):
    make_job("gone", status="deleted", uuid="jobuuid00002")
    make_job("theirs", pid=2, uuid="jobuuid00003")
    r = add(api, **fields)
    assert r.status_code == 400 and r.json["info"].startswith(f"{field}:"), r.text
    assert SECRET not in r.text
    assert api.ok("GET", "/token/1/info") == []


def test_token_8_and_64_chars_are_fine(api):
    assert add(api, token="a" * 8).status_code == 200
    assert add(api, token="b" * 64).status_code == 200
    assert add(api, token="cccccccc", isjob="true", jobname="").status_code == 400


def test_token_roles_and_isolation(api):
    reader = api.user("r1", 1, "read")
    writer = api.user("w1", 1, "write")
    deleter = api.user("u1", 1, "delete")
    assert api.get("/token/1/info", key=reader).status_code == 403
    assert api.post("/token/1/info", key=reader).status_code == 403
    assert add(api, key=reader).status_code == 403
    tid = add(api, key=writer).json["id"]
    assert api.delete(f"/token/1/{tid}", key=writer).status_code == 403
    theirs = add(api, pid=2).json["id"]
    assert api.get("/token/2/info", key=deleter).status_code == 403
    assert add(api, pid=2, token="another-token", key=deleter).status_code == 403
    assert api.delete(f"/token/2/{theirs}", key=deleter).status_code == 403
    assert api.delete(f"/token/1/{theirs}", key=deleter).status_code == 404
    assert api.delete("/token/1/12345").status_code == 404
    assert api.delete("/token/1/xyz").status_code == 404
    assert api.delete(f"/token/1/{tid}", key=deleter).json["data"] is True
    assert len(api.ok("GET", "/token/2/info")) == 1


def test_lookup_matches_this_project_or_the_global_one(api):
    make_job("deploy")
    add(api, isjob=True, jobname="deploy")
    add(api, pid=0, token="global-token-1")
    add(api, pid=2, token="other-project-token")
    gone = add(api, token="revoked-token").json["id"]
    api.ok("DELETE", f"/token/1/{gone}")
    with database.connection_context():
        found = tokens.lookup(1, SECRET)
        assert found["projectid"] == 1 and found["isjob"] is True
        assert found["jobname"] == "deploy" and found["token_prefix"] == "Abcd"
        assert tokens.lookup(1, "global-token-1")["projectid"] == 0
        assert tokens.lookup(2, "global-token-1")["projectid"] == 0
        assert tokens.lookup(1, "other-project-token") is None
        assert tokens.lookup(2, SECRET) is None
        assert tokens.lookup(1, "revoked-token") is None
        assert tokens.lookup(1, SECRET[:-1]) is None
        assert tokens.lookup(1, "") is None and tokens.lookup(1, None) is None
