"""The ledger: one row per attempt, and what ct-sync last learned of each member (the payload CrowdTwist accepted,
the data it refused), in SQLite (embedded) or PostgreSQL (production), through SQLAlchemy Core. Implements the
core's `Ledger`, `KnownStates` and `LatestOutcomes` ports; also answers `status` and `resubmit`, and purges what is
past retention.
`runs.py` keeps job runs, their logs and stop requests, file deliveries (the `JobRuns` and `Deliveries` ports) and
the scheduler's lease and schedule marks in the same database.
"""
