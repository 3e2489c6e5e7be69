"""The ledger: one row per attempt and the last state CrowdTwist accepted per member, in SQLite (embedded) or
PostgreSQL (production), through SQLAlchemy Core. Implements the core's `Ledger` and `SyncedStates` ports; also
answers `status` and `resubmit`, and purges what is past retention. `runs.py` keeps job runs and file deliveries
(the `JobRuns` and `Deliveries` ports) in the same database.
"""
