"""Every setting opsjob reads, in one table, taken from the environment."""

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
BOOLEANS.update({"0": False, "false": False, "no": False, "off": False})
# ssh's ControlPersist: yes, no, or a time (``60``, ``60s``, ``1h30m``); nothing else reaches
# the ssh command line.
PERSIST = re.compile(r"yes|no|(?:[0-9]+[smhdwSMHDW]?)+")
# ssh's KexAlgorithms: names separated by commas, with ssh's optional leading + - or ^.
KEX = re.compile(r"[+^-]?[A-Za-z0-9@._-]+(?:,[A-Za-z0-9@._-]+)*")
HEADER = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")  # no underscores: see api.server.asgi
COOKIE = re.compile(r"[A-Za-z0-9_.-]+")
USERINFO = re.compile(r"https?://[^/?#\s]+[^\s#]*")


def networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The comma-separated addresses and CIDRs of ``text`` (ValueError on anything else)."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def _networks_or_why(raw: str) -> str:
    try:
        return "" if networks(raw) else "must list addresses or CIDRs"
    except ValueError:
        return "must be addresses or CIDRs separated by commas"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Each field maps to one ``OPSJOB_*`` environment variable."""

    home: str = field(
        default="./var",
        metadata={
            "env": "OPSJOB_HOME",
            "doc": "Data directory: SQLite database, queue, file store, run dirs.",
        },
    )
    database_url: str = field(
        default="",
        metadata={
            "env": "OPSJOB_DATABASE_URL",
            "doc": "Database URL. Empty means `sqlite:///$OPSJOB_HOME/opsjob.db`; "
            "`postgresql://user@host:5432/db` selects PostgreSQL.",
        },
    )
    log_level: str = field(
        default="INFO",
        metadata={
            "env": "OPSJOB_LOG_LEVEL",
            "choices": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
            "doc": "Python log level: DEBUG, INFO, WARNING, ERROR, CRITICAL.",
        },
    )
    log_format: str = field(
        default="text",
        metadata={
            "env": "OPSJOB_LOG_FORMAT",
            "choices": ("text", "json"),
            "doc": "`text`, or `json`: one JSON object a line with `time`, `level`, `logger`, "
            "`message`, `request_id` and `task` (the task uuid).",
        },
    )
    queue_url: str = field(
        default="",
        metadata={
            "env": "OPSJOB_QUEUE_URL",
            "doc": "Task queue. Empty means SQLite under `$OPSJOB_HOME`; "
            "`redis://host:6379/0` selects Redis (many workers, many hosts).",
        },
    )
    worker_name: str = field(
        default="",
        metadata={
            "env": "OPSJOB_WORKER_NAME",
            "doc": "Name a worker records on the tasks it runs (the `slave`). "
            "Empty means the host name.",
        },
    )
    task_lease: int = field(
        default=60,
        metadata={
            "env": "OPSJOB_TASK_LEASE",
            "min": 1,
            "doc": "Seconds a running task survives without a heartbeat from its "
            "worker before it is failed as lost.",
        },
    )
    ansible_forks: int = field(
        default=0,
        metadata={
            "env": "OPSJOB_ANSIBLE_FORKS",
            "min": 0,
            "doc": "Hosts one step run drives at once (Ansible's forks; never more than the "
            "step's hosts). 0 chooses from the worker's cores (see Sizing a worker).",
        },
    )
    host_key_checking: bool = field(
        default=False,
        metadata={
            "env": "OPSJOB_HOST_KEY_CHECKING",
            "doc": "Check the nodes' SSH host keys against known_hosts (true/false).",
        },
    )
    ansible_warm: bool = field(
        default=True,
        metadata={
            "env": "OPSJOB_ANSIBLE_WARM",
            "doc": "Fork cmd and scp step runs from a controller process that has Ansible "
            "imported already (true/false); false starts ansible-playbook afresh each time.",
        },
    )
    ssh_control_persist: str = field(
        default="60s",
        metadata={
            "env": "OPSJOB_SSH_CONTROL_PERSIST",
            "pattern": (PERSIST, "yes, no or a time such as 60s"),
            "doc": "How long an idle SSH master connection to a node "
            "stays open for the next step (ssh ControlPersist).",
        },
    )
    ssh_kex_algorithms: str = field(
        default="",
        metadata={
            "env": "OPSJOB_SSH_KEX_ALGORITHMS",
            "pattern": (KEX, "ssh key exchange names separated by commas"),
            "doc": "The key exchanges ssh offers a node (ssh KexAlgorithms); empty keeps "
            "ssh's own list (see Sizing a worker).",
        },
    )
    max_upload: int = field(
        default=1024 * 1024 * 1024,
        metadata={
            "env": "OPSJOB_MAX_UPLOAD",
            "min": 0,
            "doc": "Most bytes of file content one upload request to the file store may carry "
            "(all its files together); more is refused with 413.",
        },
    )
    public_url: str = field(
        default="",
        metadata={
            "env": "OPSJOB_PUBLIC_URL",
            "doc": "Base URL users reach the API at, for links handed to other systems "
            "(e.g. `https://jobs.example.com`). Empty means links are paths only.",
        },
    )
    tz: str = field(
        default="",
        metadata={
            "env": "OPSJOB_TZ",
            "doc": "Time zone crontab schedules are read in (an IANA name such as "
            "`Europe/Paris`). Empty means the server's local zone.",
        },
    )
    smtp_url: str = field(
        default="",
        repr=False,
        metadata={
            "env": "OPSJOB_SMTP_URL",
            "doc": "SMTP server for email notifications: `smtp://user:pass@host:587"
            "?starttls=1&from=opsjob@example.com` (`smtps://` for TLS from the start; "
            "`cafile=` trusts a private CA). Empty means no email. The password is never logged.",
        },
    )
    sms_webhook: str = field(
        default="",
        repr=False,
        metadata={
            "env": "OPSJOB_SMS_WEBHOOK",
            "doc": "HTTP(S) URL of an SMS gateway: notifications are POSTed to it as JSON "
            '`{"to": [names], "text": "..."}`. Empty means no SMS. Admin configuration: '
            "called as set, `OPSJOB_WEBHOOK_ALLOW` does not apply.",
        },
    )
    webhook_allow: str = field(
        default="public",
        metadata={
            "env": "OPSJOB_WEBHOOK_ALLOW",
            "doc": "Where project webhooks may point, comma separated: `public` (any globally "
            "routable address), addresses or CIDRs (`10.20.0.0/16`), host patterns "
            "(`*.chat.example.com`: that name whatever it resolves to). Checked on every "
            "address a name resolves to, on save and on each delivery.",
        },
    )
    notify_retries: int = field(
        default=5,
        metadata={
            "env": "OPSJOB_NOTIFY_RETRIES",
            "min": 0,
            "doc": "How many times a notification whose receiver is down is retried "
            "(after 2, 4, 8, ... seconds) before it is recorded as failed.",
        },
    )
    secret_key: str = field(
        default="",
        repr=False,
        metadata={
            "env": "OPSJOB_SECRET_KEY",
            "doc": "Fernet key(s) that encrypt credentials at rest, comma separated (the first "
            "encrypts, all decrypt). Empty means the key in `$OPSJOB_HOME/secret.key`, which "
            "`opsjob init` creates; with neither, secrets are refused. Every API node and "
            "worker needs the same key.",
        },
    )
    inventory_timeout: int = field(
        default=30,
        metadata={
            "env": "OPSJOB_INVENTORY_TIMEOUT",
            "min": 1,
            "doc": "Seconds resolving node groups through their inventory sources may take "
            "(scripts and plugin configs included) before it is stopped and reported.",
        },
    )

    retention_days: int = field(
        default=90,
        metadata={
            "env": "OPSJOB_RETENTION_DAYS",
            "min": 0,
            "doc": "Days finished tasks (with their steps, host results, logs and notification "
            "attempts), console commands and unreferenced file store blobs are kept; "
            "`opsjob prune` and the daily prune delete older ones. 0 keeps everything.",
        },
    )
    max_log_bytes: int = field(
        default=10 * 1024 * 1024,
        metadata={
            "env": "OPSJOB_MAX_LOG_BYTES",
            "min": 0,
            "doc": "Most characters of one task's log kept (bytes for ASCII output). Past it "
            "the log keeps its first and last halves and says how much was cut in between. "
            "0 keeps it all.",
        },
    )

    playbook_paths: str = field(
        default="",
        metadata={
            "env": "OPSJOB_PLAYBOOK_PATHS",
            "doc": "Worker directories (`:`-separated) under which a playbook step's "
            "`path:<dir>` source may lie. Empty: `path:` sources are refused.",
        },
    )
    playbook_git_protocols: str = field(
        default="https:ssh",
        metadata={
            "env": "OPSJOB_PLAYBOOK_GIT_PROTOCOLS",
            "doc": "Git protocols (`:`-separated) a playbook step's `git:` source may use; "
            "add `file` to allow repositories on the worker.",
        },
    )
    playbook_network_projects: str = field(
        default="",
        metadata={
            "env": "OPSJOB_PLAYBOOK_NETWORK_PROJECTS",
            "doc": "Project ids (comma-separated) whose contained playbook steps may open "
            "connections from the worker wherever it can (default: only to the step's hosts).",
        },
    )
    playbook_trusted_projects: str = field(
        default="",
        metadata={
            "env": "OPSJOB_PLAYBOOK_TRUSTED_PROJECTS",
            "doc": "Project ids (comma-separated) whose playbook steps may run without "
            "bubblewrap containment when the worker cannot provide it.",
        },
    )
    auth_proxy_from: str = field(
        default="",
        metadata={
            "env": "OPSJOB_AUTH_PROXY_FROM",
            "check": _networks_or_why,
            "doc": "Addresses or CIDRs (comma-separated) of authenticating proxies whose "
            "user header is trusted (see Putting a web UI in front): the connection's own peer "
            "address must be one of them. Empty: no proxy is trusted.",
        },
    )
    auth_proxy_header: str = field(
        default="X-Forwarded-User",
        metadata={
            "env": "OPSJOB_AUTH_PROXY_HEADER",
            "pattern": (HEADER, "a header name (letters, digits and dashes)"),
            "doc": "Header in which a trusted proxy names the user.",
        },
    )
    sso_userinfo_url: str = field(
        default="",
        metadata={
            "env": "OPSJOB_SSO_USERINFO_URL",
            "pattern": (USERINFO, "an http:// or https:// URL"),
            "doc": "OpenC3 Connector's user-info URL (`http://connector/connectorx/username`): "
            "the single-sign-on cookie is resolved to a user through it. Empty: cookies are "
            "ignored. Admin configuration: called as set.",
        },
    )
    sso_cookie: str = field(
        default="sid",
        metadata={
            "env": "OPSJOB_SSO_COOKIE",
            "pattern": (COOKIE, "a cookie name"),
            "doc": "Name of OpenC3's single-sign-on cookie (its `cookiekey`).",
        },
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build settings from ``environ`` (default ``os.environ``); keyword overrides win.
        A value a setting cannot mean is refused (InvalidInput naming the variable)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw: Any = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(f, raw)
        values.update(overrides)
        return cls(**values)

    @property
    def database(self) -> str:
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return "sqlite:///" + os.path.join(os.path.abspath(self.home), "opsjob.db")


def _parse(f: Any, raw: str) -> Any:
    """The value of setting ``f`` that the environment's text ``raw`` means."""
    from engine.errors import InvalidInput

    meta, name = f.metadata, f.metadata["env"]
    if f.type in (bool, "bool"):
        if raw.strip().lower() not in BOOLEANS:
            raise InvalidInput(f"{name}: must be true or false, not {raw!r}")
        return BOOLEANS[raw.strip().lower()]
    if f.type in (int, "int"):
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(f"{name}: must be an integer, not {raw!r}") from None
        if value < meta["min"]:
            raise InvalidInput(f"{name}: must be an integer of at least {meta['min']}, not {raw!r}")
        return value
    if "choices" in meta:
        for choice in meta["choices"]:
            if raw.strip().lower() == choice.lower():
                return choice
        raise InvalidInput(f"{name}: must be one of {', '.join(meta['choices'])}, not {raw!r}")
    if "pattern" in meta and not meta["pattern"][0].fullmatch(raw):
        raise InvalidInput(f"{name}: must be {meta['pattern'][1]}, not {raw!r}")
    if "check" in meta and (why := meta["check"](raw)):
        raise InvalidInput(f"{name}: {why}, not {raw!r}")
    return raw


def documented() -> Iterator[tuple[str, Any, str]]:
    """Yield ``(env name, default, doc)`` for every setting, for the README and its test."""
    for f in fields(Settings):
        yield f.metadata["env"], f.default, f.metadata["doc"]
