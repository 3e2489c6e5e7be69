"""The sync itself, in rooms whose imports point one way (checked by `lint-imports`, contracts in pyproject.toml):

    cli/          the `ct-sync` commands; with bootstrap, the only code that imports the adapters
    bootstrap.py  the composition root: builds the worker, the jobs and the scheduler from `Settings`, accepts fakes
    emulators.py  the emulators served on loopback (demo, `ct-sync sandbox`, tests, benchmarks)
    jobs/         jobs and groups of the config file: runs, notifications, the scheduler (above segments/)
    worker/       the kombu consumer, the handler, the supervisor, the outage breaker, readiness
    segments/     the segment export run: members in, a CrowdTwist segment file out (beside worker/)
    console/      the web console: overview, failures, members, dead letters, job runs; resubmit and replay
    alerts/       when to email and what; the dispatcher; the SMTP and outbox mailers
    ledger/       the SQL history of every attempt, group commit, retention; job runs, deliveries, the
                  scheduler's lease and marks
    http.py       the one place that serves HTTP (health, metrics; the intake and the emulators)
    metrics.py    the Prometheus registry
    core/         the model, mapping, decisions, the use cases, ports: imports no I/O library and no adapter

The adapters (`siebel_adapter`, `crowdtwist_client`) import only `core`; `config` imports nothing of ours.
"""
