"""/users: the admin's view of users and their API keys (listed masked; revoke, disable)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.access import users


class Collection:
    """Every user."""

    @requires("admin")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List users with their roles and keys (masked, with creation time, last use,
        expiry and state: active, expired or revoked)."""
        ok(resp, users.list_users())


class Item:
    """One user."""

    @requires("admin")
    @takes(users.USER)
    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Disable a user (disabled: true), so every key of theirs is refused at once, or
        enable them again (disabled: false)."""
        ok(resp, users.set_disabled(name, params(req)))


class Keys:
    """A user's keys."""

    @requires("admin")
    @takes(users.KEY)
    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Add a key; it is shown once (expires: a duration such as 90d, 12h, 30m, 2w, or a
        date YYYY-MM-DD[ HH:MM[:SS]]; empty: until revoked)."""
        ok(resp, users.add_key(name, params(req)))


class Key:
    """One key of a user."""

    @requires("admin")
    @takes()
    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str, keyid: int) -> None:
        """Revoke a key: it is refused at once on every API node and stays listed as revoked."""
        ok(resp, users.revoke_key(keyid, name))


ROUTES = [
    ("/users", Collection()),
    ("/users/{name}", Item()),
    ("/users/{name}/keys", Keys()),
    ("/users/{name}/keys/{keyid:int}", Key()),
]
