"""API keys over their lifetime: listed masked, expiring, revoked and disabled users refused
at once, through the admin routes and the real `opsjob user` commands, on every API node."""

import contextlib
import datetime
import json
import os
import subprocess
import sys

import pytest

from engine.access import auth
from engine.store.clock import now
from engine.store.db import database
from engine.store.models import ApiKey, Role, User
from tests.httpclient import call, free_port, wait_until_up

OPSJOB = os.path.join(os.path.dirname(sys.executable), "opsjob")


def listed(api, name):
    return [u for u in api.ok("GET", "/users") if u["name"] == name][0]


def test_keys_are_listed_masked_with_their_creation_and_last_use(api, monkeypatch):
    # every request reads its key here: what is tested is the once-a-minute write of its use
    monkeypatch.setattr(auth, "KEPT_SECONDS", 0)
    key = api.user("ann", projectid=1, role="write")
    shown = listed(api, "ann")
    assert shown["roles"] == {"1": "write"} and shown["disabled"] is False
    [entry] = shown["keys"]
    assert entry["key"] == key[:7] + "\u2026" and key not in json.dumps(api.ok("GET", "/users"))
    assert entry["state"] == "active" and entry["create_time"] and entry["last_used"] is None
    assert entry["expires"] is None and entry["revoked"] is None
    api.ok("GET", "/jobs/1", key=key)
    first = listed(api, "ann")["keys"][0]["last_used"]
    assert first is not None
    # at most one write a minute per key: move the last use back 30 s, it is not written again
    earlier = now() - datetime.timedelta(seconds=30)
    with database.connection_context():
        ApiKey.update(last_used=earlier).where(ApiKey.hint == key[:7]).execute()
    api.ok("GET", "/jobs/1", key=key)
    assert listed(api, "ann")["keys"][0]["last_used"] == earlier.strftime("%Y-%m-%d %H:%M:%S")
    older = now() - datetime.timedelta(seconds=61)
    with database.connection_context():
        ApiKey.update(last_used=older).where(ApiKey.hint == key[:7]).execute()
    api.ok("GET", "/jobs/1", key=key)
    assert listed(api, "ann")["keys"][0]["last_used"] > older.strftime("%Y-%m-%d %H:%M:%S")


def test_an_expired_key_is_refused(api):
    api.user("bo", projectid=1, role="read")
    made = api.ok("POST", "/users/bo/keys", json={"expires": "90d"})
    key = made["key"]
    expires = datetime.datetime.strptime(made["expires"], "%Y-%m-%d %H:%M:%S")
    assert abs(expires - (now() + datetime.timedelta(days=90))) < datetime.timedelta(minutes=1)
    api.ok("GET", "/jobs/1", key=key)
    with database.connection_context():  # as if 90 days went by
        ApiKey.update(expires=now() - datetime.timedelta(seconds=1)).where(
            ApiKey.id == made["id"]
        ).execute()
    r = api.get("/jobs/1", key=key)
    assert r.status_code == 401 and r.json["info"] == "credentials expired"
    assert [k["state"] for k in listed(api, "bo")["keys"]] == ["active", "expired"]


def test_revoked_keys_and_disabled_users_are_refused_at_once(api):
    kept = api.user("cy", projectid=1, role="read")
    leaked = api.ok("POST", "/users/cy/keys", json={})
    assert leaked["expires"] is None
    api.ok("GET", "/jobs/1", key=leaked["key"])
    api.ok("DELETE", f"/users/cy/keys/{leaked['id']}")
    r = api.get("/jobs/1", key=leaked["key"])
    assert r.status_code == 401 and r.json["info"] == "credentials revoked"
    r = api.get("/jobs/1", headers={"appname": "cy", "appkey": leaked["key"]}, key=None)
    assert r.status_code == 401
    api.ok("GET", "/jobs/1", key=kept)  # the user's other key still works
    states = {k["id"]: (k["state"], bool(k["revoked"])) for k in listed(api, "cy")["keys"]}
    assert states[leaked["id"]] == ("revoked", True)

    api.ok("POST", "/users/cy", json={"disabled": True})
    assert listed(api, "cy")["disabled"] is True
    for headers, key in (({}, kept), ({"appname": "cy", "appkey": kept}, None)):
        r = api.get("/jobs/1", headers=headers, key=key)
        assert r.status_code == 401 and r.json["info"] == "credentials of a disabled user"
    api.ok("POST", "/users/cy", json={"disabled": "false"})
    api.ok("GET", "/jobs/1", key=kept)
    assert api.get("/jobs/1", key=leaked["key"]).status_code == 401  # revoked stays revoked


def test_a_key_is_read_once_and_kept_until_keys_users_or_roles_change(api, monkeypatch):
    key = api.user("fay", projectid=1, role="read")
    reads = []
    read = auth._read
    monkeypatch.setattr(auth, "_read", lambda *a: reads.append(1) or read(*a))
    for _ in range(3):
        api.ok("GET", "/jobs/1", key=key)
    assert len(reads) == 1  # kept: one read of the key and user for three requests
    # Changes made straight in the database, as another node or a notebook would make them,
    # are seen at the next request (the triggers move the auth version on).
    with database.connection_context():
        Role.update(role="write").where(Role.projectid == 1).execute()
    api.ok("GET", "/jobs/1", key=key)
    assert len(reads) == 2
    with database.connection_context():
        Role.delete().where(Role.projectid == 1).execute()
    assert api.get("/jobs/1", key=key).status_code == 403
    with database.connection_context():
        Role.insert(user_id=User.get(User.name == "fay").id, projectid=1, role="read").execute()
    api.ok("GET", "/jobs/1", key=key)
    with database.connection_context():
        User.update(disabled=True).where(User.name == "fay").execute()
    assert api.get("/jobs/1", key=key).status_code == 401
    with database.connection_context():
        User.update(disabled=False).where(User.name == "fay").execute()
    api.ok("GET", "/jobs/1", key=key)
    with database.connection_context():
        ApiKey.update(revoked=now()).where(ApiKey.hint == key[:7]).execute()
    assert api.get("/jobs/1", key=key).status_code == 401
    # what the process keeps about a key is also bounded in time
    other = api.user("gus", projectid=1, role="read")
    api.ok("GET", "/jobs/1", key=other)
    monkeypatch.setattr(auth, "KEPT_SECONDS", 0)
    before = len(reads)
    api.ok("GET", "/jobs/1", key=other)
    assert len(reads) == before + 1


def test_a_kept_key_still_expires_on_the_clock(api, monkeypatch):
    api.user("hal", projectid=1, role="read")
    made = api.ok("POST", "/users/hal/keys", json={"expires": "90d"})
    api.ok("GET", "/jobs/1", key=made["key"])
    later = now() + datetime.timedelta(days=91)
    monkeypatch.setattr(auth, "now", lambda: later)
    r = api.get("/jobs/1", key=made["key"])
    assert r.status_code == 401 and r.json["info"] == "credentials expired"


def test_key_routes_are_admin_only_and_check_their_input(api):
    writer = api.user("dee", projectid=1, role="write")
    for method, path, body in (
        ("GET", "/users", None),
        ("POST", "/users/dee", {"disabled": True}),
        ("POST", "/users/dee/keys", {}),
        ("DELETE", "/users/root/keys/1", None),
    ):
        assert api.call(method, path, key=writer, json=body).status_code == 403, path
    for body in (
        {"expires": "0d"},
        {"expires": "90y"},
        {"expires": "2001-01-01"},
        {"expires": "99999999d"},
        {"expires": "2030-02-30"},
        {"expires": ["1d"]},
    ):
        r = api.post("/users/dee/keys", json=body)
        assert r.status_code == 400 and r.json["info"].startswith("expires"), (body, r.text)
    r = api.post("/users/dee", json={})
    assert r.status_code == 400 and r.json["info"].startswith("disabled")
    assert api.post("/users/nobody/keys", json={}).status_code == 404
    assert api.delete("/users/dee/keys/99999").status_code == 404
    assert api.delete(f"/users/dee/keys/{2**70}").status_code == 404
    root_key = listed(api, "root")["keys"][0]["id"]
    r = api.delete(f"/users/dee/keys/{root_key}")  # not dee's key: nothing is revoked
    assert r.status_code == 404
    api.ok("GET", "/users")


# -- the real command and two API nodes sharing one database -----------------------------------


@pytest.fixture
def env(settings):
    return {**os.environ, "OPSJOB_HOME": settings.home, "OPSJOB_DATABASE_URL": settings.database}


def opsjob(env, *args):
    out = subprocess.run([OPSJOB, *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextlib.contextmanager
def api_nodes(env, count=2):
    """Serve ``count`` API nodes (each with 2 worker processes) on one database."""
    procs, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [OPSJOB, "serve", "--port", str(port), "--workers", "2"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_until_up(url, proc, timeout=60)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)


def statuses(urls, key, times=6):
    """Status codes of ``times`` GETs to each node (enough to reach both of its workers)."""
    return {call("GET", f"{url}/jobs/1", key)[0] for url in urls for _ in range(times)}


@pytest.mark.slow
@pytest.mark.parametrize("settings", ["postgres"], indirect=True)  # the multi-node backend
def test_the_user_commands_revoke_and_disable_on_every_api_node(env):
    opsjob(env, "project", "add", "1", "one")
    other = opsjob(env, "user", "add", "eve", "--project", "1", "--role", "read", "--expires", "2w")
    key = opsjob(env, "user", "key", "add", "eve", "--expires", "90d")
    assert key.startswith("oj_") and other.startswith("oj_")
    with api_nodes(env) as urls:
        assert statuses(urls, key) == {200} and statuses(urls, other) == {200}
        listing = opsjob(env, "user", "list")
        assert key not in listing and key[:7] + "\u2026" in listing
        line = [row for row in listing.splitlines() if key[:7] in row][0]
        keyid = line.split()[1]
        assert "active" in line and "last used never" not in line
        assert (now() + datetime.timedelta(days=90)).strftime("%Y-%m-%d") in line

        assert opsjob(env, "user", "key", "revoke", keyid) == f"key {keyid} revoked"
        assert statuses(urls, key) == {401} and statuses(urls, other) == {200}

        opsjob(env, "user", "disable", "eve")
        assert statuses(urls, other) == {401}
        opsjob(env, "user", "enable", "eve")
        assert statuses(urls, other) == {200} and statuses(urls, key) == {401}

    bad = subprocess.run(
        [OPSJOB, "user", "key", "add", "eve", "--expires", "soon"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "expires" in bad.stderr
    missing = subprocess.run(
        [OPSJOB, "user", "key", "revoke", "4242"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "4242" in missing.stderr


def test_a_ticket_dies_with_the_key_that_asked_for_it(api):
    from engine.access import auth, tickets
    from engine.errors import Unauthenticated

    api.user("dee", projectid=1, role="read")
    issued = api.ok("POST", "/users/dee/keys", json={})
    principal = auth.authenticate(issued["key"])
    good = tickets.issue(principal, issued["key"], 1)["ticket"]
    assert tickets.redeem(good, 1).name == "dee"
    doomed = tickets.issue(principal, issued["key"], 1)["ticket"]
    api.ok("DELETE", f"/users/dee/keys/{issued['id']}")
    with pytest.raises(Unauthenticated, match="no longer valid"):
        tickets.redeem(doomed, 1)
