"""Who may do what: API keys and users, project access checks, job tokens, single-use websocket
tickets and project user lists.
"""
