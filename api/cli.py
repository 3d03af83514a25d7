"""The ``opsjob`` command: set up the database, manage users and projects, serve the API."""

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from engine.access import auth, users
from engine.catalog import projects
from engine.errors import OpsjobError
from engine.insight import audit, metrics
from engine.machines import credentials
from engine.ops import logformat
from engine.store import faults, schema
from engine.store.db import database, open_database
from engine.store.settings import Settings

if TYPE_CHECKING:
    from api.server.asgi import Router


def _open(settings: Settings) -> int:
    open_database(settings.database)
    return schema.upgrade()


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments of a command, for its audit entry."""
    return {k: v for k, v in vars(args).items() if k not in ("run", "command") and v is not None}


def cmd_init(settings: Settings, args: argparse.Namespace) -> None:
    version = _open(settings)
    print(f"schema version {version} at {settings.database}")
    made = credentials.ensure_secret_key(settings)
    if made:
        print(f"created the key that encrypts credentials: {made}", file=sys.stderr)


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> None:
    _open(settings)
    if (args.project is None) != (args.role is None):
        raise OpsjobError("--project and --role go together")
    with database.connection_context():
        key = auth.add_user(
            args.name,
            admin=args.admin,
            email=args.email or "",
            projectid=args.project,
            role=args.role,
            expires=users.expiry(args.expires, "--expires"),
        )
        audit.record_cli("user add", "users", args.name, args.project, _fields(args))
    print(key)


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> None:
    _open(settings)
    with database.connection_context():
        rows = users.list_users()
    for u in rows:
        state = ["admin"] if u["admin"] else []
        state += [f"{role}@{pid}" for pid, role in u["roles"].items()]
        state += ["DISABLED"] if u["disabled"] else []
        print(f"{u['name']}\t{' '.join(state) or '-'}\t{u['email'] or '-'}")
        for k in u["keys"]:
            print(
                f"  key {k['id']}\t{k['key']}\t{k['state']}\tcreated {k['create_time']}"
                f"\tlast used {k['last_used'] or 'never'}\texpires {k['expires'] or 'never'}"
            )


def cmd_user_key_add(settings: Settings, args: argparse.Namespace) -> None:
    _open(settings)
    with database.connection_context():
        made = users.add_key(args.name, {"expires": args.expires or ""})
        audit.record_cli("user key add", "users", f"{args.name}/{made['id']}", None, _fields(args))
        print(made["key"])


def cmd_user_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    _open(settings)
    with database.connection_context():
        users.revoke_key(args.keyid)
        audit.record_cli("user key revoke", "users", args.keyid, None, _fields(args))
    print(f"key {args.keyid} revoked")


def cmd_user_disable(settings: Settings, args: argparse.Namespace) -> None:
    _open(settings)
    disabled = args.action == "disable"
    with database.connection_context():
        users.set_disabled(args.name, {"disabled": disabled})
        audit.record_cli(f"user {args.action}", "users", args.name, None, _fields(args))
    print(f"user {args.name} {'disabled' if disabled else 'enabled'}")


def cmd_project_add(settings: Settings, args: argparse.Namespace) -> None:
    _open(settings)
    with database.connection_context():
        projects.add_project(args.id, args.name, user="cli")
        audit.record_cli("project add", "project", args.id, args.id, _fields(args))
    print(f"project {args.id} {args.name}")


def cmd_bootstrap(settings: Settings, args: argparse.Namespace) -> None:
    """Create the first admin (once) and print how to reach the API."""
    _open(settings)
    credentials.ensure_secret_key(settings)
    key_file = os.path.join(settings.home, "admin.key")
    with database.connection_context():
        if not os.path.exists(key_file):
            os.makedirs(settings.home, exist_ok=True)
            exists = auth.user_exists("admin")
            key = auth.new_key("admin") if exists else auth.add_user("admin", admin=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            audit.record_cli("bootstrap", "users", "admin")
        if projects.ensure_demo(user="bootstrap"):
            audit.record_cli("bootstrap", "project", 1, 1)
            print("created project 1 'demo' with machine 'localhost' (Ansible local connection)")
    with open(key_file) as f:
        key = f.read().strip()
    url = f"http://{args.host}:{args.port}"
    print(
        f"opsjob API: {url}\nadmin key: {key}\n"
        f"try:  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        f'-d \'{{"node_type":"builtin","node_cont":"localhost","scripts_type":"shell",'
        f'"scripts_cont":"uname -a"}}\' {url}/task/1/plugin_cmd'
    )


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    """Run a queue consumer: it claims tasks, runs their steps, and sweeps lost ones."""
    import logging
    import threading

    from engine import boot
    from engine.run import lifecycle

    logformat.configure(settings)
    _open(settings)
    huey = boot.start(settings)
    if hasattr(huey, "check"):  # Redis: say at once (one line) if it cannot be reached
        huey.check()
    stop = threading.Event()
    metrics.heartbeat(lifecycle.worker_name())  # alive from the start, not from the first sweep

    def sweeper() -> None:  # lost tasks are found within seconds, not at the next minute tick
        while not stop.wait(max(1.0, min(5.0, settings.task_lease / 3))):
            metrics.heartbeat(lifecycle.worker_name())
            try:
                lifecycle.sweep()
            except Exception:
                logging.getLogger("opsjob.worker").exception("sweep failed")

    threading.Thread(target=sweeper, daemon=True, name="sweeper").start()
    consumer = huey.create_consumer(
        workers=args.workers,
        worker_type="thread",
        periodic=not args.no_scheduler,
        initial_delay=0.05,
        backoff=1.15,
        max_delay=0.1,
        check_worker_health=True,
    )
    try:
        consumer.run()
    finally:
        stop.set()


def _check_listen(host: str, port: int) -> None:
    """Fail in one line now if ``host:port`` cannot be listened on (gunicorn would retry)."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        why = (e.strerror or str(e)).split(" (while attempting")[0]
        raise OpsjobError(f"cannot listen on {host}:{port}: {why}") from None


def _say_if_queue_down(settings: Settings) -> None:
    """Print one line now if the queue cannot be reached (then /readyz reports it)."""
    from engine import boot
    from engine.errors import Unavailable
    from engine.run import queue

    boot.start(settings)
    try:
        queue.ping()
    except Unavailable as e:
        print(
            f"opsjob: the queue {faults.redact(settings.queue_url)} is unreachable "
            f"({e.info.removeprefix('queue: ')}); launches answer 503 until it is back",
            file=sys.stderr,
            flush=True,
        )


def cmd_up(settings: Settings, args: argparse.Namespace) -> None:
    """Serve the API and run a worker together (the embedded default)."""
    import signal
    import subprocess

    _open(settings)
    child = subprocess.Popen([sys.argv[0], "worker", "--workers", str(args.task_workers)])
    try:
        cmd_serve(settings, args)
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    _check_listen(args.host, args.port)
    _open(settings)
    _say_if_queue_down(settings)
    from gunicorn.app.base import BaseApplication

    # Gunicorn manages the processes; each runs uvicorn's event loop, which reads requests
    # asynchronously (a slow client holds no thread) and serves the websockets on the same
    # port. The Falcon app runs on a thread pool behind a2wsgi (api.server.asgi).
    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", "api.server.asgi.Worker")
            self.cfg.set("loglevel", settings.log_level.lower())
            self.cfg.set("timeout", 120)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("child_exit", lambda server, worker: metrics.process_gone(worker.pid))
            if "control_socket" in self.cfg.settings:  # gunicorn 25.1 and later
                path = _control_socket(settings, args.port)
                self.cfg.set("control_socket_disable", path is None)
                self.cfg.set("control_socket", path or "")
            if settings.log_format == "json":  # gunicorn's and uvicorn's own lines too
                self.cfg.set("logconfig_dict", logformat.gunicorn_config(settings))

        def load(self) -> "Router":
            from api.server.asgi import create_asgi_app

            return create_asgi_app(settings)

    Server().run()


def _control_socket(settings, port):
    """Where gunicorn's control socket (for ``gunicornc``) listens: under OPSJOB_HOME, one
    per port, never gunicorn's default that every server of a user shares. None (no socket)
    when the path is too long for a unix socket."""
    path = os.path.join(os.path.abspath(settings.home), f"gunicorn-{port}.ctl")
    return path if len(os.fsencode(path)) < 100 else None


EXPIRES = "when the key expires: 90d, 12h, 30m, 2w or YYYY-MM-DD (default: never)"


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> None:
    """Check the installation; print one line per check; exit 1 when one fails."""
    from engine.ops import doctor

    failed = 0
    for name, ok, detail in doctor.run(settings):
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {name:<11} {detail}", flush=True)
    if failed:
        raise SystemExit(1)


def cmd_prune(settings: Settings, args: argparse.Namespace) -> None:
    """Delete history older than OPSJOB_RETENTION_DAYS (or count it with --dry-run)."""
    import time

    from engine.ops import retention

    _open(settings)
    if settings.retention_days <= 0:
        print("OPSJOB_RETENTION_DAYS is 0: everything is kept")
    started = time.monotonic()
    counts = retention.prune(settings, dry_run=args.dry_run)
    if not args.dry_run and counts:
        with database.connection_context():
            audit.record_cli("prune", "history", "", None, dict(counts))
    verb = "would delete" if args.dry_run else "deleted"
    for what, n in sorted(counts.items()):
        print(f"{verb} {n} {what}")
    print(f"{'counted' if args.dry_run else 'pruned'} in {time.monotonic() - started:.1f} s")
    if args.vacuum and not args.dry_run:
        retention.vacuum()
        print("vacuumed the database")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opsjob", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create or upgrade the database schema").set_defaults(run=cmd_init)

    serve = sub.add_parser("serve", help="serve the HTTP API under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=2)
    serve.set_defaults(run=cmd_serve)

    work = sub.add_parser("worker", help="run a worker that executes tasks from the queue")
    work.add_argument("--workers", type=int, default=4, help="tasks run at once (threads)")
    work.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run periodic jobs here (run exactly one scheduler)",
    )
    work.set_defaults(run=cmd_worker)

    up = sub.add_parser("up", help="serve the API and run a worker together")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080)
    up.add_argument("--workers", type=int, default=2, help="API processes")
    up.add_argument(
        "--task-workers", type=int, default=4, help="tasks run at once (as opsjob worker --workers)"
    )
    up.set_defaults(run=cmd_up)

    boot = sub.add_parser("bootstrap", help="create the first admin key and the demo project")
    boot.add_argument("--host", default="127.0.0.1")
    boot.add_argument("--port", type=int, default=8080)
    boot.set_defaults(run=cmd_bootstrap)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user and print a new API key once")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--email")
    add.add_argument("--project", type=int)
    add.add_argument("--role", choices=auth.ROLES)
    add.add_argument("--expires", help=EXPIRES)
    add.set_defaults(run=cmd_user_add)
    user.add_parser("list", help="list users and their keys (masked)").set_defaults(
        run=cmd_user_list
    )
    for action, what in (("disable", "refuse every key of a user"), ("enable", "undo disable")):
        toggle = user.add_parser(action, help=what)
        toggle.add_argument("name")
        toggle.set_defaults(run=cmd_user_disable)
    key = user.add_parser("key", help="manage API keys").add_subparsers(dest="key", required=True)
    kadd = key.add_parser("add", help="add a key to a user and print it once")
    kadd.add_argument("name")
    kadd.add_argument("--expires", help=EXPIRES)
    kadd.set_defaults(run=cmd_user_key_add)
    revoke = key.add_parser("revoke", help="revoke a key (its id is in `user list`)")
    revoke.add_argument("keyid", type=int)
    revoke.set_defaults(run=cmd_user_key_revoke)

    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="action", required=True
    )
    padd = project.add_parser("add", help="add a project")
    padd.add_argument("id", type=int)
    padd.add_argument("name")
    padd.set_defaults(run=cmd_project_add)
    doctor = sub.add_parser("doctor", help="check the installation, one line per check")
    doctor.set_defaults(run=cmd_doctor)
    prune = sub.add_parser("prune", help="delete history older than OPSJOB_RETENTION_DAYS")
    prune.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    prune.add_argument(
        "--vacuum", action="store_true", help="then rewrite the database to give space back"
    )
    prune.set_defaults(run=cmd_prune)

    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = None
    try:
        settings = Settings.from_env()
        args.run(settings, args)
    except OpsjobError as e:
        print(f"opsjob: {e.info}", file=sys.stderr)
        return 2
    except Exception as e:  # a known kind of failure (database down, disk full) is one line
        line = faults.startup_failure(e, settings or Settings())
        if line is None:
            raise
        print(f"opsjob: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
