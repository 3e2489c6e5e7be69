"""Alerts: the policy decides when to email and what (one per state change, digests), the texts carry Member
Numbers and actions but never personal data, the dispatcher sends without ever slowing a sync, and the mailers
deliver (SMTP, or `.eml` files in the outbox when no server is set).
"""
