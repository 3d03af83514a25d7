import pytest

from engine.store.db import database
from engine.store.models import Environment

TITLE = "projectid: ${projectid} job ${status}\nsecond line\tand a tab"


def test_environment_set_read_update_delete(api):
    assert api.ok("GET", "/environment") == {}
    assert (
        api.ok(
            "POST",
            "/environment",
            json={"isPageSuccessEmail": "true", "notifyTemplateEmailTitle": TITLE},
        )
        == 2
    )
    plain = api.user("plain")  # any logged-in caller may read
    assert api.ok("GET", "/environment", key=plain) == {
        "isPageSuccessEmail": "true",
        "notifyTemplateEmailTitle": TITLE,
    }
    # upsert: an existing key is replaced, a new one added
    assert api.ok("POST", "/environment", json={"isPageSuccessEmail": "false", "x1": ""}) == 2
    other_admin = api.user("boss", admin=True)
    assert api.ok("POST", "/environment", params={"isApiFailSms": "true"}, key=other_admin) == 1
    assert api.ok("GET", "/environment") == {
        "isPageSuccessEmail": "false",
        "notifyTemplateEmailTitle": TITLE,
        "x1": "",
        "isApiFailSms": "true",
    }
    with database.connection_context():
        creators = {r.key: r.create_user for r in Environment.select()}
    assert creators == {
        "isPageSuccessEmail": "root",
        "notifyTemplateEmailTitle": "root",
        "x1": "root",
        "isApiFailSms": "boss",
    }
    # delete: parameter names, from the query string or the JSON body
    r = api.call("DELETE", "/environment?x1&isApiFailSms&missing1")
    assert r.status_code == 200 and r.json["data"] == 2
    assert api.ok("DELETE", "/environment", json={"isPageSuccessEmail": "", "gone": 1}) == 1
    assert api.ok("GET", "/environment") == {"notifyTemplateEmailTitle": TITLE}


@pytest.mark.parametrize(
    "body,named",
    [
        ({"bad-key": "v"}, "bad-key"),
        ({"bad key": "v"}, "bad key"),
        ({"k" * 201: "v"}, "k" * 40),
        ({"flag": True}, "flag"),
        ({"flag": 1}, "flag"),
        ({"flag": None}, "flag"),
        ({"flag": ["a"]}, "flag"),
        ({"flag": {"a": "b"}}, "flag"),
        ({"flag": "v" * 5001}, "flag"),
        ({"flag": "bell\x07"}, "flag"),
    ],
)
def test_environment_rejects_bad_pairs_and_writes_nothing(api, body, named):
    r = api.post("/environment", json={"good1": "yes", **body})
    assert r.status_code == 400 and r.json["info"].startswith(f"{named}"), r.text
    assert api.ok("GET", "/environment") == {}


def test_environment_longest_value_is_fine(api):
    assert api.ok("POST", "/environment", json={"big": "v" * 5000}) == 1
    assert len(api.ok("GET", "/environment")["big"]) == 5000


def test_environment_empty_requests_are_400(api):
    r = api.post("/environment", json={})
    assert r.status_code == 400 and r.json["info"].startswith("body:")
    r = api.post("/environment")
    assert r.status_code == 400 and r.json["info"].startswith("body:")
    r = api.delete("/environment")
    assert r.status_code == 400 and r.json["info"].startswith("body:")
    r = api.delete("/environment", params={"no-good": ""})
    assert r.status_code == 400 and r.json["info"].startswith("no-good:")


def test_environment_writes_need_admin(api):
    api.ok("POST", "/environment", json={"keep1": "v"})
    key = api.user("u1", 1, "delete")
    assert api.post("/environment", json={"a1": "v"}, key=key).status_code == 403
    assert api.delete("/environment", params={"keep1": ""}, key=key).status_code == 403
    assert api.ok("GET", "/environment", key=key) == {"keep1": "v"}
    assert api.get("/environment", key=None).status_code == 401
    assert api.get("/environment", key="oj_not-a-key").status_code == 401
