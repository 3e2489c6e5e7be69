"""The sync itself, in rooms on floors whose imports point down (checked by `lint-imports`, contracts in
pyproject.toml; a new room is refused until it is given a floor):

    cli/          the `ct-sync` commands: read options, build through bootstrap, call one use case, print
    bootstrap.py  the composition root: builds the worker, intake, poller, console, jobs and scheduler from
                  `Settings`, accepts fakes
    jobs/         jobs and groups of the config file: the table of kinds, runs, notifications, the scheduler
    worker/       the handler, the supervisor, the outage breaker and gate, the in-flight sizer, readiness
    segments/     the segment export run: members in, a CrowdTwist segment file out
    console/      the web console: overview, failures, members, dead letters, job runs; resubmit and replay
    entrypoints/  how Siebel's changes enter the queue: the intake (pushed) and the poller (pulled)
    http.py       the one place that serves HTTP (health, metrics; the intake, the console and the emulators)
    metrics.py    the Prometheus registry
    alerts/       when to email and what; the dispatcher; the SMTP and outbox mailers
    ledger/       the SQL history of every attempt, group commit, retention; job runs, deliveries, the
                  scheduler's lease and marks, the privacy register, operator actions
    queue/        the broker, topology, publisher, dead letters and consumer: the only code that imports kombu
    core/         the model, mapping, decisions, the use cases, ports: imports no I/O library and no adapter

The adapters of outside systems (`siebel_adapter`, `crowdtwist_client`) import only `core`; `config` imports nothing
of ours; the stand-ins to rehearse on live in the top-level `sandbox` package.
"""
