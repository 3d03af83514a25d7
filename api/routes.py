"""Every route group the API serves, in the order the OpenAPI document lists them."""

from . import (
    crontab,
    environment,
    jobs,
    nodegroup,
    nodelist,
    notify,
    projects,
    scripts,
    slave,
    subtask,
    task,
    token,
    userlist,
    variable,
)

GROUPS = [
    projects,
    jobs,
    variable,
    scripts,
    task,
    subtask,
    slave,
    crontab,
    nodegroup,
    nodelist,
    userlist,
    token,
    notify,
    environment,
]
