"""Every route group the API serves, in the order the OpenAPI document lists them."""

from api.accounts import projects, token, userlist, users
from api.machines import cmd, credential, nodegroup, nodeinfo, nodelist
from api.routes import (
    analysis,
    approval,
    audit,
    crontab,
    environment,
    fileserver,
    jobs,
    notify,
    scripts,
    slave,
    subtask,
    task,
    third,
    variable,
    vv,
)
from api.server import health, metrics

GROUPS = [
    projects,
    jobs,
    variable,
    scripts,
    task,
    analysis,
    subtask,
    approval,
    slave,
    crontab,
    nodegroup,
    nodelist,
    nodeinfo,
    credential,
    userlist,
    token,
    notify,
    environment,
    vv,
    fileserver,
    cmd,
    third,
    users,
    health,
    metrics,
    audit,
]
