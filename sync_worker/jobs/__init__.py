"""Jobs and schedules (design.md, "Jobs and schedules"; Responsys Classic Connect's jobs): named jobs and groups
from the TOML file, each run recorded in the ledger with its log, notified by email, started on demand or by the
scheduler.

    catalog.py    the `[jobs.NAME]` and `[groups.NAME]` tables, checked at start; which groups hold a job
    context.py    a run in progress: its log, its counts and files, its safe points (stop requests)
    kinds.py      what each kind of job does in a run: `segment-export`, `poll`, `resubmit`
    runner.py     runs a job or a group (in order, stopping at the first that does not succeed) and records it
    notify.py     the email after a run: when (`notify = each|failed|none`) and what
    scheduler.py  `ct-sync scheduler`: due runs started once, missed runs once, jitter, a lease for one leader

Adapters reach a run only through ports the composition root hands in (the table of kinds).
"""
