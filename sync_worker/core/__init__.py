"""The core: what ct-sync *is*, free of any I/O library, so it reads (and is tested) as plain Python.

    member.py     the Siebel loyalty member, CT Sync Statuses and outcomes, who is skipped
    ct_user.py    the CrowdTwist user as the core sees it: the payload it sends, the user it reads back
    mapping.py    member → payload, and the pre-check of CrowdTwist's documented rules
    sync.py       the use case: bring CrowdTwist to a member's current Siebel state, write the outcome back
    decisions.py  what becomes of a message after a failed attempt (retry later, CT Failure, dead letter)
    resubmit.py   the use case: choose members to queue again
    segments.py   the rules of a CrowdTwist segment file: NAME, suffix, who is left out, rows, count and ready files
    messages.py   the queue wire format (JSON, schema-versioned)
    ports.py      the Protocols the adapters satisfy: CrowdTwist, the member store, publisher, ledger, mailer,
                  the drop folder, deliveries and job runs, privacy deletions
    errors.py     the exception tree: the class of an exception is the retry decision
    metering.py   counting the CrowdTwist calls one sync spends
    clock.py      the real clock behind the `Clock` port

Imports: the standard library, pydantic, structlog and `config`; nothing else of ours.
"""
