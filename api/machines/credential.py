"""/credential: login users, SSH keys and become passwords of a project (0: shared).

Secrets are write-only: they are accepted here and never returned.
"""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.machines import credentials
from engine.store import listing


class Collection:
    """Credentials of a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING, credentials.LIST_FILTERS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List credentials (no secrets: only whether a key or password is set)."""
        ok(resp, credentials.list_credentials(projectid, params(req)))

    @requires("write")
    @takes(credentials.CREDENTIAL, credentials.SECRETS)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Create a credential: name, username, ssh_key, become_password, describe."""
        ok(
            resp,
            True,
            id=credentials.save_credential(projectid, params(req), req.context.principal.name),
        )


class Item:
    """One credential."""

    @requires("write")
    @takes(credentials.CREDENTIAL, credentials.SECRETS)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str) -> None:
        """Edit a credential; a secret left out is kept, one given empty is removed."""
        credentials.save_credential(projectid, params(req), req.context.principal.name, id)
        ok(resp, True)

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str
    ) -> None:
        """Delete a credential and wipe its secrets."""
        ok(resp, credentials.delete_credential(projectid, id, req.context.principal.name))


ROUTES = [
    ("/credential/{projectid:int}", Collection()),
    ("/credential/{projectid:int}/{id}", Item()),
]
