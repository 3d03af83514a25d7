"""The bottom layer: database, models, schema, shared row helpers, listing, validation, settings,
ids, clock, outage errors, secrets at rest and installed data folders. It imports no other room.
"""
