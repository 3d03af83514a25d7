"""The pure compile step: exact playbooks, inventories and node-side scripts, no I/O."""

import base64
import re
import shlex

import pytest
import yaml

from engine.ansible.playbook import (
    Host,
    compile_cmd,
    compile_scp,
    inventory_yaml,
    run_script,
    scp_paths,
)
from engine.errors import InvalidInput

RUN = "0123456789abcdef"
JINJA = "{{ lookup('pipe','id') }}"


def _unsafe_loader():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor(
        "!unsafe", lambda loader, node: ("unsafe", loader.construct_scalar(node))
    )
    return Loader


def test_cmd_playbook_is_exact_and_fixed():
    c = compile_cmd(
        [Host("web1", {"ansible_host": "10.0.0.1"})],
        "echo hi",
        "shell",
        become_user="deploy",
        timeout=30,
        run_id=RUN,
    )
    assert c.playbook == (
        f"# Compiled by opsjob from one cmd step (run {RUN}).\n"
        "# Only opsjob's own text and checked identifiers appear here: the step's script, "
        "argv and\n"
        "# environment travel inside files/run.sh, which opsjob_node sends to the node "
        "untemplated.\n"
        "- name: opsjob targets\n"
        "  hosts: opsjob_targets\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        '    - name: "opsjob: run"\n'
        "      opsjob_node:\n"
        "        script: run.sh\n"
        f"        run_id: {RUN}\n"
        '        tag: "c{{ oj_slot }}"\n'
        '      become: "{{ oj_become }}"\n'
        "      become_user: deploy\n"
        "      timeout: 50\n"
    )
    assert "oj_become: true" in c.files["inventory/hosts.yml"].decode()
    plain = compile_cmd([Host("web1")], "echo hi", "shell", timeout=30, run_id=RUN)
    assert "become" not in plain.playbook and "become" not in plain.cleanup
    assert c.kind == "cmd" and c.targets == ("web1",) and c.source is None and c.timeout == 30
    assert set(c.files) == {"project/files/run.sh", "inventory/hosts.yml"} and c.links == {}


def test_a_host_logged_in_as_the_step_user_does_not_become():
    root, deploy, unknown = (
        Host("a", {"ansible_user": "root"}),
        Host("b", {"ansible_user": "deploy"}),
        Host("c"),  # the worker's own SSH configuration picks the login user: become
    )
    c = compile_cmd([root, deploy, unknown], "id", "shell", become_user="root", run_id=RUN)
    hosts = yaml.load(c.files["inventory/hosts.yml"], Loader=_unsafe_loader())["all"]["hosts"]
    assert [hosts[n]["oj_become"] for n in "abc"] == [False, True, True]
    for book in (c.playbook, c.cleanup):
        task = yaml.safe_load(book)[0]["tasks"][0]
        assert (task["become"], task["become_user"]) == ("{{ oj_become }}", "root")
    alone = compile_cmd([root], "id", "shell", become_user="root", run_id=RUN)
    assert "become" not in alone.playbook and "become" not in alone.cleanup
    assert "oj_become" not in alone.files["inventory/hosts.yml"].decode()


def test_cleanup_marks_then_kills_the_recorded_group():
    c = compile_cmd([Host("web1")], "true", "shell", become_user="deploy", run_id=RUN)
    raw = yaml.safe_load(c.cleanup)[0]["tasks"][0]
    assert raw["become_user"] == "deploy" and raw["args"] == {"executable": "/bin/bash"}
    script = raw["ansible.builtin.raw"]
    assert script.index(': > "$f.cancel"') < script.index('kill -KILL -- "-$(cat "$f.pgid")"')
    assert f"f=/tmp/.opsjob-{RUN}-$t;" in script


def test_scp_playbook_has_source_and_target_plays():
    c = compile_scp(
        Host("src1"), "/a/b", [Host("web1"), Host("src1")], "/c/", timeout=30, run_id=RUN
    )
    plays = yaml.safe_load(c.playbook)
    assert [p["name"] for p in plays] == ["opsjob source", "opsjob targets"]
    # one task per host and play: the source packs and is fetched, each target receives and
    # unpacks
    assert [t["name"] for t in plays[0]["tasks"]] == ["opsjob: fetch"]
    assert plays[0]["tasks"][0]["opsjob_node"] == {
        "script": "pack.sh",
        "run_id": RUN,
        "tag": "p{{ oj_slot }}",
        "fetch": "{{ playbook_dir }}/payload.tar",
    }
    assert [t["name"] for t in plays[1]["tasks"]] == ["opsjob: unpack"]
    assert plays[1]["tasks"][0]["opsjob_node"]["put"] == "{{ playbook_dir }}/payload.tar"
    assert c.targets == ("web1", "src1") and c.source == "src1"
    assert set(c.files) == {
        "project/files/pack.sh",
        "project/files/unpack.sh",
        "inventory/hosts.yml",
    }
    # one inventory entry per host; the source that is also a target has both tags
    inv = yaml.load(c.files["inventory/hosts.yml"], Loader=_unsafe_loader())
    assert inv["all"]["hosts"] == {
        "src1": {"oj_slot": 0, "oj_tags": ("unsafe", "p0 u0")},
        "web1": {"oj_slot": 1, "oj_tags": ("unsafe", "u1")},
    }
    assert list(inv["all"]["children"]["opsjob_targets"]["hosts"]) == ["web1", "src1"]
    assert list(inv["all"]["children"]["opsjob_source"]["hosts"]) == ["src1"]


def test_a_source_that_is_a_target_under_another_login_gets_its_own_entry():
    """Same machine, two logins (the group's credential user for the target): one inventory
    entry each, so each end of the copy logs in as itself; results keep the machine's name."""
    as_root = {"ansible_host": "10.0.0.5", "ansible_user": "root"}
    c = compile_scp(
        Host("m1", as_root),
        "/a",
        [Host("m1", {**as_root, "ansible_user": "deploy"}), Host("m1.source")],
        "/b/",
        run_id=RUN,
    )
    inv = yaml.load(c.files["inventory/hosts.yml"], Loader=_unsafe_loader())
    assert inv["all"]["hosts"] == {
        "m1.source_": {
            "oj_slot": 0,
            "oj_tags": ("unsafe", "p0"),
            "ansible_host": ("unsafe", "10.0.0.5"),
            "ansible_user": ("unsafe", "root"),
        },
        "m1": {
            "oj_slot": 1,
            "oj_tags": ("unsafe", "u1"),
            "ansible_host": ("unsafe", "10.0.0.5"),
            "ansible_user": ("unsafe", "deploy"),
        },
        "m1.source": {"oj_slot": 2, "oj_tags": ("unsafe", "u2")},
    }
    assert list(inv["all"]["children"]["opsjob_source"]["hosts"]) == ["m1.source_"]
    assert c.source == "m1" and c.targets == ("m1", "m1.source")
    # a machine named by its address alone keeps its address
    c = compile_scp(Host("10.0.0.6"), "/a", [Host("10.0.0.6", {"ansible_user": "u"})], "/b/")
    inv = yaml.load(c.files["inventory/hosts.yml"], Loader=_unsafe_loader())
    assert inv["all"]["hosts"]["10.0.0.6.source"]["ansible_host"] == ("unsafe", "10.0.0.6")


def test_scp_from_the_file_store_links_the_local_file():
    c = compile_scp(
        None, "pkg.tgz", [Host("web1")], "/opt/", local_source="/store/1/ab", run_id=RUN
    )
    plays = yaml.safe_load(c.playbook)
    assert [p["name"] for p in plays] == ["opsjob targets"]
    assert plays[0]["tasks"][0]["opsjob_node"]["put"] == "{{ playbook_dir }}/payload.bin"
    assert c.links == {"project/payload.bin": "/store/1/ab"} and c.source is None
    assert "oj_dp=/opt/pkg.tgz\n" in c.files["project/files/unpack.sh"].decode()
    assert "oj_raw=1\n" in c.files["project/files/unpack.sh"].decode()


def test_inventory_values_are_unsafe_and_round_trip():
    tricky = 'a"b\\c\n\u2028\u0085\x7f\u00e9\U0001f600 ' + JINJA
    text = inventory_yaml(
        {
            "h1": {
                "oj_slot": 0,
                "ansible_port": 2222,
                "ansible_host": tricky,
                "flag": True,
                "none": None,
            }
        },
        {"g": ["h1"]},
    )
    assert text.isascii()
    assert '      ansible_host: !unsafe "a\\"b\\\\c\\u000a' in text
    inv = yaml.load(text, Loader=_unsafe_loader())
    assert inv["all"]["hosts"]["h1"] == {
        "oj_slot": 0,
        "ansible_port": 2222,
        "ansible_host": ("unsafe", tricky),
        "flag": True,
        "none": None,
    }
    assert inv["all"]["children"] == {"g": {"hosts": {"h1": {}}}}


def test_user_text_never_reaches_a_playbook():
    c = compile_cmd(
        [Host("web1", {"ansible_user": JINJA})],
        JINJA,
        "shell",
        argv=JINJA,
        env={"wk_x": JINJA},
        run_id=RUN,
    )
    for text in (c.playbook, c.cleanup):
        assert "lookup" not in text
    run = c.files["project/files/run.sh"].decode()
    assert f"export wk_x={shlex.quote(JINJA)}\n" in run
    assert f"oj_argv={shlex.quote(JINJA)}\n" in run
    s = compile_scp(
        Host("src1"),
        f"/x/{JINJA}",
        [Host("web1")],
        f"/y/{JINJA}/",
        chown="a:b",
        chmod="u+x",
        run_id=RUN,
    )
    for text in (s.playbook, s.cleanup):
        assert "lookup" not in text


def test_run_script_carries_the_content_byte_for_byte():
    content = "#!/bin/bash\necho 'ü' \"$1\"\n\n  \n\n"
    c = compile_cmd(
        [Host("web1")], content, "shell", argv="a 'b c'", env={"wk_a": "1 2"}, run_id=RUN
    )
    run = c.files["project/files/run.sh"].decode()
    payload = re.search(
        r"<<'__OPSJOB_SCRIPT__' \|\| exit 125\n(.*?)__OPSJOB_SCRIPT__\n", run, re.DOTALL
    ).group(1)
    # trailing blank lines collapse into one newline, as in OpenC3
    assert base64.b64decode(payload).decode() == "#!/bin/bash\necho 'ü' \"$1\"\n"
    assert run.startswith("#!/bin/bash\n") and "setsid --wait timeout --verbose -k 5 60" in run
    assert 'exec /bin/bash "$oj_tag.d/script" "$@"\n' in run
    assert "export wk_a='1 2'\n" in run and "oj_argv='a '\"'\"'b c'\"'\"''\n" in run
    assert run == run_script(
        RUN, 60, "#!/bin/bash\necho 'ü' \"$1\"\n", "shell", "a 'b c'", {"wk_a": "1 2"}
    )


@pytest.mark.parametrize(
    "kind,line",
    [
        ("python", 'exec "$oj_py" "$oj_tag.d/script" "$@"'),
        ("perl", 'exec /usr/bin/perl "$oj_tag.d/script" "$@"'),
        ("php", 'exec /usr/bin/php "$oj_tag.d/script" "$@"'),
        ("auto", 'exec "$oj_tag.d/script" "$@"'),
    ],
)
def test_interpreters(kind, line):
    run = compile_cmd([Host("h")], "x", kind, run_id=RUN).files["project/files/run.sh"].decode()
    assert line + "\n" in run
    if kind == "python":
        assert "oj_py=python3; command -v python3 >/dev/null 2>&1 || oj_py=python\n" in run


@pytest.mark.parametrize(
    "sp,dp,want",
    [
        ("/a/dir/", "/b", ("/a/dir/", "/b/")),
        ("/a/dir/", "/b/", ("/a/dir/", "/b/")),
        ("/a/f.txt", "/b/", ("/a/f.txt", "/b/f.txt")),
        ("/a/f.txt", "/b/g.txt", ("/a/f.txt", "/b/g.txt")),
        ("/a/dir", "/b/", ("/a/dir", "/b/dir")),
    ],
)
def test_scp_trailing_slash_rules(sp, dp, want):
    assert scp_paths(sp, dp) == want


def test_scp_paths_reach_the_scripts_quoted():
    c = compile_scp(
        Host("s"),
        "/a/it's dir",
        [Host("d")],
        "-odd/",
        chown="www-data:adm",
        chmod="0640",
        delete=True,
        run_id=RUN,
    )
    pack = c.files["project/files/pack.sh"].decode()
    unpack = c.files["project/files/unpack.sh"].decode()
    assert "oj_sp=" + shlex.quote("/a/it's dir") + "\n" in pack
    # a relative path that starts with "-" is never taken for an option
    assert "oj_dp=" + shlex.quote("./-odd/it's dir") + "\n" in unpack
    assert "oj_delete=1\n" in unpack and "oj_chown=www-data:adm\n" in unpack
    assert "oj_chmod=0640\n" in unpack and "oj_raw=0\n" in unpack


@pytest.mark.parametrize(
    "call,field",
    [
        (lambda: compile_cmd([Host("bad name")], "x", "shell"), "node:"),
        (lambda: compile_cmd([Host("a"), Host("a")], "x", "shell"), "node:"),
        (lambda: compile_cmd([], "x", "shell"), "node:"),
        (lambda: compile_cmd([Host("a", {"oj_slot": 1})], "x", "shell"), "node:"),
        (lambda: compile_cmd([Host("a", {"x": [1]})], "x", "shell"), "node:"),
        (lambda: compile_cmd([Host("a")], "x", "ruby"), "scripts_type:"),
        (lambda: compile_cmd([Host("a")], "x\x00", "shell"), "scripts_cont:"),
        (lambda: compile_cmd([Host("a")], "x", "shell", argv="\x00"), "scripts_argv:"),
        (lambda: compile_cmd([Host("a")], "x", "shell", env={"wk-x": "1"}), "variable:"),
        (lambda: compile_cmd([Host("a")], "x", "shell", become_user="root;id"), "user:"),
        (lambda: compile_cmd([Host("a")], "x", "shell", timeout=0), "timeout:"),
        (lambda: compile_cmd([Host("a")], "x", "shell", timeout="60"), "timeout:"),
        (lambda: compile_scp(Host("s"), "/a", [Host("d")], "/b", chown="a b"), "chown:"),
        (lambda: compile_scp(Host("s"), "/a", [Host("d")], "/b", chmod="999"), "chmod:"),
        (lambda: compile_scp(Host("s"), "", [Host("d")], "/b"), "sp:"),
        (lambda: compile_scp(Host("s"), "/a", [Host("d")], ""), "dp:"),
        (lambda: compile_scp(Host("s"), "/a", [], "/b"), "dst:"),
        (lambda: compile_scp(None, "/a", [Host("d")], "/b"), "src:"),
        (lambda: compile_scp(None, "dir/", [Host("d")], "/b", local_source="/f"), "sp:"),
        (lambda: compile_scp(Host("bad/name"), "/a", [Host("d")], "/b"), "src:"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(InvalidInput) as err:
        call()
    assert str(err.value).startswith(field)


def test_run_ids_are_fresh_by_default():
    a = compile_cmd([Host("h")], "x", "shell")
    b = compile_cmd([Host("h")], "x", "shell")
    assert a.run_id != b.run_id and re.fullmatch(r"[0-9a-f]{16}", a.run_id)
