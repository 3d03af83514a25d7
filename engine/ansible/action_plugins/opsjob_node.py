"""``opsjob_node``: run one of a step's node scripts with a single remote command.

Ansible's ``script`` action starts several remote shells per host (a temp dir, the transfer,
chmod, the run, the clean-up), and each one pays the node's shell start-up files. This action
sends the script through the standard input of the one command that runs it, the way Ansible
pipelines its modules: the node saves it as ``/tmp/.opsjob-<run>-<tag>.sh`` (a new file; an
existing one is refused) and runs it with bash. The script's text never passes through Jinja:
the action reads the file itself. ``put`` first copies a local file to
``/tmp/.opsjob-<run>-<tag>.in`` (one file transfer); ``fetch`` afterwards brings
``/tmp/.opsjob-<run>-<tag>.tar`` back to a local path and removes it on the node.
"""

import re

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

RUN_ID = re.compile(r"[a-f0-9]{8,32}")
TAG = re.compile(r"[a-z][0-9]{1,6}")


def remote_command(run_id, tag):
    """The command that saves the script arriving on stdin and runs it (see the docstring)."""
    if not RUN_ID.fullmatch(run_id) or not TAG.fullmatch(tag):
        raise AnsibleActionFail(f"opsjob_node: bad run id or tag: {run_id!r} {tag!r}")
    path = f"/tmp/.opsjob-{run_id}-{tag}.sh"
    # The file is private and new (a subshell's umask and noclobber); the script itself runs
    # under the login's own umask.
    return f"(umask 077 && set -C && exec cat > {path}) && exec /bin/bash {path} {tag}"


class ActionModule(ActionBase):
    """See the module docstring."""

    TRANSFERS_FILES = False  # no remote temp dir: the script travels on the command's stdin
    _VALID_ARGS = frozenset(("script", "run_id", "tag", "put", "fetch"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        run_id, tag = str(args.get("run_id", "")), str(args.get("tag", ""))
        command = remote_command(run_id, tag)
        with open(self._find_needle("files", args["script"]), "rb") as f:
            script = f.read()
        base = f"/tmp/.opsjob-{run_id}-{tag}"
        if args.get("put"):
            self._connection.put_file(args["put"], base + ".in")
        res = self._low_level_execute_command(command, sudoable=True, in_data=script)
        result.update(
            changed=True,
            rc=res["rc"],
            stdout=res["stdout"],
            stderr=res["stderr"],
            stdout_lines=res["stdout_lines"],
            stderr_lines=res["stderr_lines"],
        )
        if res["rc"] != 0:
            result["failed"] = True
            result["msg"] = f"non-zero return code {res['rc']}"
            return result
        if args.get("fetch"):
            try:
                self._connection.fetch_file(base + ".tar", args["fetch"])
            finally:
                self._low_level_execute_command(f"rm -f -- {base}.tar", sudoable=True)
        return result
