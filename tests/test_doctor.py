"""`opsjob doctor` fails a check for each broken part, and passes a healthy installation."""

import dataclasses
import os

from engine.ops import doctor
from engine.store import schema
from engine.store.db import database, open_database
from engine.store.secrets import ensure_key_file, key_file
from engine.store.settings import Settings


def results(settings):
    return {name: (ok, detail) for name, ok, detail in doctor.run(settings)}


def test_a_healthy_installation_passes_every_check(settings):
    open_database(settings.database)
    schema.upgrade()
    ensure_key_file(settings)
    got = results(settings)
    assert list(got) == [
        "packages",
        "database",
        "queue",
        "secret key",
        "ansible",
        "ssh",
        "file store",
    ]
    assert all(ok for ok, _ in got.values()), got
    assert f"schema version {schema.LATEST}" in got["database"][1]


def test_each_broken_part_fails_its_check(tmp_path):
    settings = Settings(
        home=str(tmp_path),
        database_url="postgresql://nobody@127.0.0.1:1/none",
        queue_url="redis://127.0.0.1:1/0",
        secret_key="not-a-fernet-key",
    )
    got = results(settings)
    for name in ("database", "queue", "secret key"):
        assert got[name][0] is False, (name, got[name])
    assert "127.0.0.1:1" in got["database"][1]
    assert "not a Fernet key" in got["secret key"][1]
    assert got["ansible"][0] and got["ssh"][0]
    ok, detail = doctor.check_free_space(settings, minimum=1 << 60)
    assert not ok and "free" in detail


def test_a_missing_or_shared_key_file_fails(tmp_path):
    settings = Settings(home=str(tmp_path))
    assert doctor.check_secret_key(settings)[0] is False  # none at all
    ensure_key_file(settings)
    assert doctor.check_secret_key(settings)[0] is True
    os.chmod(key_file(settings), 0o644)
    ok, detail = doctor.check_secret_key(settings)
    assert not ok and "chmod 600" in detail


def test_an_old_schema_fails_the_database_check(settings):
    open_database(settings.database)
    schema.upgrade()
    with database.connection_context():
        database.execute_sql("UPDATE schema_version SET version = 1")
    try:
        ok, detail = doctor.check_database(dataclasses.replace(settings))
        assert not ok and "opsjob init" in detail
    finally:
        with database.connection_context():
            database.execute_sql(f"UPDATE schema_version SET version = {schema.LATEST}")


def test_the_ssh_check_names_a_key_exchange_ssh_does_not_know(tmp_path):
    known = Settings(home=str(tmp_path), ssh_kex_algorithms="^curve25519-sha256")
    ok, detail = doctor.check_ssh(known)
    assert ok and "key exchanges offered: curve25519-sha256," in detail, detail
    unknown = Settings(home=str(tmp_path), ssh_kex_algorithms="curve25519-sha256,no-such-kex")
    ok, detail = doctor.check_ssh(unknown)
    assert not ok and "OPSJOB_SSH_KEX_ALGORITHMS=curve25519-sha256,no-such-kex" in detail
    assert "no-such-kex" in detail.split(":")[-1], detail
