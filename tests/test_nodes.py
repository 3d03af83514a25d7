"""Node lists resolve to the project's machines; only admin-set hostvars choose the connection."""

import json

from engine.errors import InvalidInput
from engine.machines import nodes
from engine.store.db import database
from engine.store.models import Nodegroup, Nodelist


def test_resolution_and_membership(api):
    with database.connection_context():
        Nodelist.create(projectid=1, name="web1", inip="10.0.0.1")
        Nodelist.create(projectid=0, name="shared", exip="8.8.8.8")
        Nodelist.create(projectid=2, name="theirs", inip="10.0.0.2")
        Nodelist.create(
            projectid=1,
            name="localhost",
            inip="127.0.0.1",
            hostvars=json.dumps({"ansible_connection": "local"}),
        )
        group = Nodegroup.create(
            projectid=1, name="g", plugin="node", params=json.dumps("localhost,web1")
        )
        stray = Nodegroup.create(
            projectid=1, name="stray", plugin="node", params=json.dumps("web1,db9")
        )
        found = nodes.resolve(1, "builtin", "web1,10.0.0.1,8.8.8.8,theirs,10.0.0.2", {})
        assert [h.name for h in found.hosts] == ["web1", "10.0.0.1", "8.8.8.8"]
        assert found.hosts[0].vars == {"ansible_host": "10.0.0.1", "ansible_connection": "ssh"}
        assert found.refused == ["theirs", "10.0.0.2"]
        found = nodes.resolve(1, "variable", "${ip},web1", {"ip": "localhost"})
        assert found.hosts[0].vars["ansible_connection"] == "local"
        # a group member gets its machine's connection
        found = nodes.resolve(1, "group", str(group.id), {})
        assert [h.name for h in found.hosts] == ["localhost", "web1"]
        assert found.hosts[0].vars["ansible_connection"] == "local"
        assert found.hosts[1].vars == {"ansible_host": "10.0.0.1", "ansible_connection": "ssh"}
        # a group with a host that is no machine of the project is refused as a whole
        for kind, text in (("group", str(stray.id)), ("builtin", "db9")):
            try:
                nodes.resolve(1, kind, text, {})
            except InvalidInput as e:
                assert e.info.startswith(f"node group 'stray' (id {stray.id}) is refused: ")
                assert "host db9 connects to db9, which is not a machine of project 1" in e.info
            else:
                raise AssertionError("a group reaching beyond the project's machines must fail")
        # another project's group resolves to nothing in this one
        assert nodes.resolve(2, "group", str(group.id), {}).hosts == []
        try:
            nodes.resolve(1, "variable", "$ip", {"ip": ""})
        except nodes.VariableUndefined as e:
            assert e.names == ["ip"]
        else:
            raise AssertionError("an empty variable must count as undefined")
