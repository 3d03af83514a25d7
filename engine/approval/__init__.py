"""Approval steps: the approvers' rows and opinions, the step's turns, the approvers' links."""
