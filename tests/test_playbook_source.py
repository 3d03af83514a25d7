"""Playbook sources: archives unpack only plain files inside their tree, git sources are
cached by commit, worker directories need an admin's listing, extra vars stay unsafe."""

import io
import os
import subprocess
import tarfile
import zipfile

import pytest

from engine.ansible import playbook
from engine.errors import InvalidInput
from engine.playbooks import sandbox as playbook_sandbox
from engine.playbooks import source as playbook_source
from engine.playbooks import step as playbook_step
from engine.store.settings import Settings


def tar_with(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def member(name, data=b"x", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
    "bad, why",
    [
        (member("link.yml", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "is a link"),
        (member("hard.yml", kind=tarfile.LNKTYPE, linkname="site.yml"), "is a link"),
        (member("../escape.yml"), "points outside"),
        (member("/abs.yml"), "points outside"),
        (member("fifo", kind=tarfile.FIFOTYPE), "is not a file"),
    ],
)
def test_tar_members_that_are_not_plain_files_inside_are_refused(tmp_path, bad, why):
    archive = tmp_path / "a.tar.gz"
    tar_with(archive, [member("site.yml", b"- hosts: all\n"), bad])
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(InvalidInput) as e:
        playbook_source._untar(str(archive), str(tree))
    assert e.value.info.startswith("source: ") and why in e.value.info
    assert not os.path.exists(tmp_path / "escape.yml")


def test_zip_links_and_escapes_are_refused_and_plain_files_unpack(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("site.yml", "- hosts: all\n")
        zf.writestr("roles/r/tasks/main.yml", "- debug: msg=hi\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    playbook_source._unzip(str(good), str(tree))
    assert (tree / "roles/r/tasks/main.yml").read_text() == "- debug: msg=hi\n"
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("evil")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/shadow")
    with pytest.raises(InvalidInput, match="is a link"):
        playbook_source._unzip(str(link), str(tmp_path / "tree"))
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as zf:
        zf.writestr("../../x.yml", "x")
    with pytest.raises(InvalidInput, match="points outside"):
        playbook_source._unzip(str(escape), str(tmp_path / "tree"))


def test_an_archive_that_unpacks_too_big_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(playbook_source, "MAX_BYTES", 1000)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("site.yml", "a" * 5000)
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(InvalidInput, match="more than 1000 bytes"):
        playbook_source._unzip(str(archive), str(tree))


def git(*argv, cwd=None):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(
        ["git", *argv], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_git_sources_are_fetched_once_per_commit(tmp_path):
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", str(work))
    (work / "site.yml").write_text("- hosts: all\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    settings = Settings(home=str(tmp_path / "home"), playbook_git_protocols="file")
    tree = playbook_source.fetch(settings, 1, f"git:{work}#main")
    assert first in tree and (tmp_path / tree / "site.yml").exists()
    assert not os.path.exists(os.path.join(tree, ".git"))
    assert playbook_source.fetch(settings, 1, f"git:{work}#main") == tree  # cached
    (work / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    git("commit", "-qam", "two", cwd=work)
    newer = playbook_source.fetch(settings, 1, f"git:{work}#main")
    assert newer != tree and git("rev-parse", "HEAD", cwd=work) in newer
    assert playbook_source.fetch(settings, 1, f"git:{work}#{first}") == tree  # by commit
    https_only = Settings(home=str(tmp_path / "home2"))
    with pytest.raises(InvalidInput, match="source: git"):
        playbook_source.fetch(https_only, 1, f"git:{work}#main")  # file protocol not allowed
    with pytest.raises(InvalidInput, match="source: must be git"):
        playbook_source.fetch(settings, 1, "git:--upload-pack=touch /tmp/x#main")


def test_worker_directories_only_under_an_admin_listed_root(tmp_path):
    allowed = tmp_path / "playbooks"
    (allowed / "web").mkdir(parents=True)
    off = Settings(home=str(tmp_path / "home"))
    with pytest.raises(InvalidInput, match="path: sources are off"):
        playbook_source.fetch(off, 1, f"path:{allowed}/web")
    on = Settings(home=str(tmp_path / "home"), playbook_paths=str(allowed))
    assert playbook_source.fetch(on, 1, f"path:{allowed}/web") == str(allowed / "web")
    for outside in (str(tmp_path), f"{allowed}/../", "/etc"):
        with pytest.raises(InvalidInput, match="not under a directory an admin allowed"):
            playbook_source.fetch(on, 1, f"path:{outside}")


def test_extra_vars_are_unsafe_and_never_override_ansible(tmp_path):
    text, skipped = playbook_step.extra_vars_yaml(
        {"greeting": "{{ lookup('pipe','id') }}", "ansible_host": "evil", "hostvars": "x", "n": 3}
    )
    assert "greeting: !unsafe \"{{ lookup('pipe','id') }}\"" in text
    assert "n: 3" in text and sorted(skipped) == ["ansible_host", "hostvars"]
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    compiled = playbook_step.compile_playbook(
        [playbook.Host("web1", {"ansible_port": 22})],
        str(tmp_path),
        "site.yml",
        tags="a,b",
        check=True,
        verbosity=2,
        become_user="deploy",
    )
    assert compiled.entry == "src/site.yml" and compiled.tree == str(tmp_path)
    assert compiled.args == (
        "--limit",
        "opsjob_targets",
        "-e",
        "@opsjob-extra-vars.yml",
        "--tags",
        "a,b",
        "--check",
        "--become",
        "--become-user",
        "deploy",
        "-vv",
    )
    mine = {"ansible_user": "deploy"}
    alone = playbook_step.compile_playbook(
        [playbook.Host("web1", mine)], str(tmp_path), "site.yml", become_user="deploy"
    )
    assert "--become" not in alone.args  # the login user already: no sudo
    mixed = playbook_step.compile_playbook(
        [playbook.Host("web1", mine), playbook.Host("web2", {"ansible_user": "ops"})],
        str(tmp_path),
        "site.yml",
        become_user="deploy",
    )
    assert mixed.args[-3:] == ("--become", "--become-user", "deploy")
    with pytest.raises(InvalidInput, match="playbook: nothere.yml is not a file"):
        playbook_step.compile_playbook([playbook.Host("web1")], str(tmp_path), "nothere.yml")


def test_bubblewrap_works_here_and_the_wrapper_drops_opsjob_settings():
    works, why = playbook_sandbox.probe()
    assert works, why  # the Makefile's system-deps install bubblewrap
    script = playbook_sandbox.wrapper("/usr/bin/bwrap", "/runs/run-x/sockets")
    assert "OPSJOB_DATABASE_URL" in script and "OPSJOB_SECRET_KEY" in script
    assert "--unshare-net" in script and "--bind /runs/run-x/sockets /run/opsjob" in script
    assert "--unshare-net" not in playbook_sandbox.wrapper("bwrap", "/s", network=True)
    trusted = Settings(playbook_trusted_projects="3,4", playbook_network_projects="5")
    assert playbook_sandbox.trusted(trusted, 4) and not playbook_sandbox.trusted(trusted, 1)
    assert playbook_sandbox.networked(trusted, 5) and not playbook_sandbox.networked(trusted, 4)


def test_without_bubblewrap_only_trusted_projects_run_playbooks(monkeypatch, tmp_path):
    monkeypatch.setattr(
        playbook_sandbox, "probe", lambda: (False, "bubblewrap (bwrap) is not installed")
    )
    settings = Settings(home=str(tmp_path), playbook_trusted_projects="7")
    why = playbook_sandbox.refusal(settings, 1)
    assert why == (
        "playbook steps need containment: bubblewrap (bwrap) is not installed, "
        "and project 1 is not trusted"
    )
    assert playbook_sandbox.refusal(settings, 7) == ""
    assert playbook_sandbox.runner_options(settings, str(tmp_path)) == {}
