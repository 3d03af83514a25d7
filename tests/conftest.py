"""Shared fixtures: a real database per backend (SQLite file, throwaway PostgreSQL database)
and the Falcon app on top of it, and Debian's headless Chromium for the page tests."""

import os
import uuid

import psycopg
import pytest
from falcon import testing

from api.server.app import create_app
from engine.access import auth
from engine.catalog import projects
from engine.store.db import database
from engine.store.settings import Settings
from tests.faultparts import pg_url, redis_server  # noqa: F401  (fixtures: breakable parts)
from tests.sshnodes import ssh_nodes  # noqa: F401  (session fixture: loopback SSH nodes)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PG_ADMIN = os.environ.get("OPSJOB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = os.environ.get("OPSJOB_TEST_BACKENDS", "sqlite,postgres").split(",")


@pytest.fixture(scope="session")
def pg_database():
    """Create a throwaway PostgreSQL database for this run and drop it afterwards."""
    name = f"opsjob_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    if database.obj is not None and not database.is_closed():
        database.close()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_postgres(url, drop_schema=False):
    """Empty the database: delete every row, or drop the whole schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        if drop_schema:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
            return
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_version'"
            )
        ]
        with conn.transaction():  # DELETE beats TRUNCATE on tables this small
            for table in tables:
                conn.execute(f'DELETE FROM "{table}"')


@pytest.fixture(params=BACKENDS)
def settings(request, tmp_path):
    """Settings for a fresh, empty database of each backend."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        if database.obj is not None and not database.is_closed():
            database.close()
        reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path}/opsjob.db"
    yield Settings(home=str(tmp_path), database_url=url)
    if database.obj is not None and not database.is_closed():
        database.close()


class Api:
    """A test client that speaks as a given key (the admin's by default)."""

    def __init__(self, app):
        self.client = testing.TestClient(app)
        with database.connection_context():
            self.admin = auth.add_user("root", admin=True)
            projects.ensure_project(1, "one")
            projects.ensure_project(2, "two")

    def user(self, name, projectid=None, role=None, admin=False):
        """Create a user and return its key."""
        with database.connection_context():
            return auth.add_user(name, admin=admin, projectid=projectid, role=role)

    def call(self, method, path, key="admin", json=None, params=None, headers=None, body=None):
        headers = dict(headers or {})
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {self.admin if key == 'admin' else key}")
        return self.client.simulate_request(
            method, path, json=json, params=params, headers=headers, body=body
        )

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.call("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def ok(self, method, path, **kw):
        """Call and assert success; return ``data``."""
        r = self.call(method, path, **kw)
        assert r.status_code == 200 and r.json["stat"] is True, (r.status_code, r.text)
        return r.json.get("data")


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def api(app):
    return Api(app)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: run `make system-deps`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
