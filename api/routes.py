"""Every route group the API serves, in the order the OpenAPI document lists them."""

from . import environment, jobs, nodelist, notify, projects, scripts, token, variable
from . import crontab, nodegroup, userlist

GROUPS = [projects, jobs, variable, scripts, nodelist, token, notify, environment,
          crontab, nodegroup, userlist]
