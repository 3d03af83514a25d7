"""The file store never reads outside what it was given: links, hard links and devices in a
tree a node or a user supplied are skipped, never followed."""

import hashlib
import os
import stat
import threading

import pytest

from engine.ansible import rundir
from engine.errors import InvalidInput
from engine.files import filestore, safetree
from engine.store.db import database
from engine.store.models import FileServer
from tests.cluster import Cluster, cmd_step, unique

SECRET = b"the worker's own secret\n"


@pytest.fixture
def home(tmp_path):
    """A worker home with a secret beside the store, and the settings that point at it."""
    (tmp_path / "secret.key").write_bytes(SECRET)
    return tmp_path


def make_tree(root, home):
    """A pulled tree holding one regular file and every kind of entry that must be skipped."""
    os.makedirs(root / "sub")
    (root / "real.txt").write_bytes(b"real\n")
    os.symlink("../../secret.key", root / "relative")
    os.symlink(str(home / "secret.key"), root / "absolute")
    os.symlink(str(home), root / "dirlink")
    os.symlink("chain2", root / "chain1")
    os.symlink("../../secret.key", root / "chain2")
    os.link(home / "secret.key", root / "hard")
    os.mkfifo(root / "fifo")
    os.mknod(root / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    os.symlink(str(home / "secret.key"), root / "sub" / "deep")


def test_scan_lists_only_regular_files_inside(home):
    root = home / "pulls" / "t1"
    make_tree(root, home)
    listing = safetree.scan(root)
    assert listing.files == ["real.txt", "sub/inner.txt"]
    assert listing.dirs == ["sub"]
    assert dict(listing.skipped) == {
        "absolute": "a symbolic link",
        "chain1": "a symbolic link",
        "chain2": "a symbolic link",
        "dirlink": "a symbolic link",
        "fifo": "a FIFO",
        "hard": "a hard link",
        "relative": "a symbolic link",
        "sub/deep": "a symbolic link",
        "zero": "a device file",
    }
    assert "skipped dirlink: a symbolic link, not followed" in listing.notes()
    with safetree.open_file(root, "sub/inner.txt") as f:
        assert f.read() == b"inner\n"
    for rel in ("relative", "absolute", "chain1", "hard", "fifo", "zero", "dirlink/secret.key"):
        with pytest.raises(safetree.Unsafe):
            safetree.open_file(root, rel)
    for rel in ("../secret.key", "sub/../../secret.key", "", "."):
        with pytest.raises(safetree.Unsafe):
            safetree.open_file(root, rel)


@pytest.fixture
def store(api, settings):
    """The database and settings of a fresh store, with the worker's secret in its home."""
    with open(os.path.join(settings.home, "secret.key"), "wb") as f:
        f.write(SECRET)
    with database.connection_context():
        yield settings


def pulled(settings, build):
    """A staging dir as a pull leaves it, filled by ``build(path)``."""
    staging = filestore.staging_dir(settings, unique("task"))
    os.makedirs(staging)
    build(staging)
    return staging


def stored_secret(settings):
    """Whether any blob in the store holds the secret."""
    sha = hashlib.sha256(SECRET).hexdigest()
    return os.path.exists(filestore.blob_path(settings, sha))


@pytest.mark.parametrize(
    "name,build",
    [
        ("relative", lambda d: os.symlink("../../secret.key", d + "leak")),
        ("absolute", lambda d: os.symlink(os.path.abspath(d + "../../secret.key"), d + "leak")),
        (
            "chain",
            lambda d: (os.symlink("two", d + "leak"), os.symlink("../../secret.key", d + "two")),
        ),
        ("hard link", lambda d: os.link(d + "../../secret.key", d + "leak")),
        ("fifo", lambda d: os.mkfifo(d + "leak")),
    ],
)
def test_a_pull_of_only_a_link_stores_nothing(store, name, build):
    staging = pulled(store, build)
    with pytest.raises(InvalidInput) as e:
        filestore.store_pulled(store, 1, staging, "ops")
    assert e.value.info.startswith("sp: the file store keeps single files")
    assert "skipped leak: a " in e.value.info and "not followed" in e.value.info
    assert not stored_secret(store)
    assert FileServer.select().count() == 0
    assert not os.path.exists(staging)


def test_a_pull_stores_its_regular_file_and_names_what_it_skipped(store):
    def build(d):
        open(d + "report.txt", "wb").write(b"report\n")
        os.symlink("../../secret.key", d + "leak")
        os.symlink(os.path.dirname(d.rstrip("/")), d + "up")

    line = filestore.store_pulled(store, 1, pulled(store, build), "ops")
    assert line.splitlines() == [
        "skipped leak: a symbolic link, not followed",
        "skipped up: a symbolic link, not followed",
        "stored report.txt in the file store of project 1 for ops",
    ]
    assert [r.name for r in FileServer.select()] == ["report.txt"]
    assert not stored_secret(store)


def test_a_pull_into_a_directory_link_stores_nothing(store):
    """A tree whose one entry is a link to a directory holding a file is not walked."""
    staging = pulled(store, lambda d: os.symlink(os.path.dirname(d.rstrip("/")), d + "up"))
    with pytest.raises(InvalidInput):
        filestore.store_pulled(store, 1, staging, "ops")
    assert FileServer.select().count() == 0


def test_a_staging_dir_that_is_a_link_is_not_read(store):
    staging = filestore.staging_dir(store, unique("task"))
    os.makedirs(os.path.dirname(staging.rstrip("/")), exist_ok=True)
    os.symlink(store.home, staging.rstrip("/"))
    with pytest.raises(InvalidInput) as e:
        filestore.store_pulled(store, 1, staging, "ops")
    assert e.value.info.startswith("sp: the pulled tree cannot be read")
    assert FileServer.select().count() == 0
    assert os.path.exists(os.path.join(store.home, "secret.key"))
    assert filestore.staging_dir(store, os.path.basename(staging.rstrip("/"))) == staging
    assert not os.path.lexists(staging.rstrip("/"))
    assert os.path.exists(os.path.join(store.home, "secret.key"))


def test_staging_is_fresh_and_outside_the_run_dirs(store):
    first = filestore.staging_dir(store, "abc123")
    os.makedirs(first)
    open(first + "left-over", "w").close()
    again = filestore.staging_dir(store, "abc123")
    assert again == first and not os.path.exists(again)
    assert os.path.commonpath([again, os.path.join(store.home, "runs")]) == store.home
    with pytest.raises(ValueError):
        filestore.staging_dir(store, "../x")


def test_the_run_dir_sweep_never_follows_what_a_tree_put_there(tmp_path):
    """A sweep reads each run dir's owner file by name; a link or a FIFO there is left alone."""
    runs = tmp_path / "runs"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pid").write_text("999999999")  # no such process: its run dir would go
    linked = runs / "linked"
    linked.mkdir(parents=True)
    os.symlink(elsewhere / "pid", linked / rundir.OWNER)
    piped = runs / "piped"
    piped.mkdir()
    os.mkfifo(piped / rundir.OWNER)
    result = {}
    sweep = threading.Thread(target=lambda: result.update(n=rundir.sweep_orphans(str(runs))))
    sweep.daemon = True
    sweep.start()
    sweep.join(10)
    if sweep.is_alive():  # the sweep is stuck in the FIFO: unblock it so the test ends
        with open(piped / rundir.OWNER, "w"):
            pass
        sweep.join(5)
        pytest.fail("the sweep opened a FIFO a pulled tree could have left")
    assert result["n"] == 0 and linked.exists() and piped.exists()


# -- end to end: a real worker pulls from a real node ------------------------------------------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "files")
    c.serve()
    c.worker(workers=2)
    c.add_nodes(1, ssh_nodes.ensure(1))
    yield c
    c.close()


def pull_job(cluster, node, setup, folder):
    """Prepare ``folder`` on ``node`` with a cmd task, then pull it into the file store."""
    prepare = cluster.ok("POST", "/task/1/plugin_cmd", cmd_step(setup, [node]))["data"]["uuid"]
    assert cluster.wait(1, prepare)["status"] == "success"
    body = {
        "src_type": "builtin",
        "src": node,
        "sp": folder + "/",
        "dst_type": "fileserver",
        "dp": "ignored",
    }
    task = cluster.ok("POST", "/task/1/plugin_scp", body)["data"]["uuid"]
    done = cluster.wait(1, task)
    log = cluster.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]
    return done, log


def names_and_secret(cluster):
    rows = cluster.ok("GET", "/fileserver/1")["data"]
    with open(os.path.join(cluster.home, "secret.key"), "rb") as f:
        secret_md5 = hashlib.md5(f.read()).hexdigest()
    return {r["name"] for r in rows}, any(r["md5"] == secret_md5 for r in rows)


@pytest.mark.slow
def test_a_node_link_to_the_workers_secret_key_is_not_stored(cluster, ssh_nodes):
    """The reproduction: a link ../../secret.key pulled from a node never reaches the store."""
    assert os.path.exists(os.path.join(cluster.home, "secret.key"))
    node = ssh_nodes.addresses[0]
    folder = f"/tmp/{unique('d')}"
    done, log = pull_job(
        cluster, node, f"mkdir -p {folder} && ln -s ../../secret.key {folder}/leak", folder
    )
    assert done["status"] == "fail", log
    assert "skipped leak: a symbolic link, not followed" in log
    names, leaked = names_and_secret(cluster)
    assert "leak" not in names and not leaked


@pytest.mark.slow
def test_links_devices_and_hard_links_from_a_node_are_skipped(cluster, ssh_nodes):
    node = ssh_nodes.addresses[0]
    folder = f"/tmp/{unique('e')}"
    secret = os.path.join(cluster.home, "secret.key")
    setup = (
        f"mkdir -p {folder} && cd {folder} && echo kept > kept.txt"
        f" && ln -s {secret} absolute && ln -s {cluster.home} dirlink"
        " && ln -s chain2 chain1 && ln -s ../../secret.key chain2 && mknod zero c 1 5"
    )
    done, log = pull_job(cluster, node, setup, folder)
    assert done["status"] == "success", log
    for name, what in (
        ("absolute", "a symbolic link"),
        ("dirlink", "a symbolic link"),
        ("chain1", "a symbolic link"),
        ("chain2", "a symbolic link"),
        ("zero", "a device file"),
    ):
        assert f"skipped {name}: {what}, not followed" in log, log
    names, leaked = names_and_secret(cluster)
    assert "kept.txt" in names and not leaked
    # Two names of one file arrive as a hard link: neither is read.
    folder = f"/tmp/{unique('h')}"
    setup = f"mkdir -p {folder} && echo one > {folder}/a && ln {folder}/a {folder}/b"
    done, log = pull_job(cluster, node, setup, folder)
    assert done["status"] == "fail", log
    assert "skipped a: a hard link" in log and "skipped b: a hard link" in log
    assert not {"a", "b"} & names_and_secret(cluster)[0]
