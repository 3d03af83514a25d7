"""What users define: projects, jobs and their steps, variables, scripts, machines, node groups,
credentials, crontabs, notify lists and environments.
"""
