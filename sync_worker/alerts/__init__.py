"""Alerts: the policy decides when to email and what (one per state change, digests naming each member's state as
the ledger has it when they are sent), the texts carry Member Numbers and actions but never personal data, the
dispatcher asks the policy and sends without ever slowing a sync, and the mailers deliver (SMTP, or `.eml` files in
the outbox when no server is set).
"""
