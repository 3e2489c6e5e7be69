"""The two ways Siebel's changes enter the queue, apart from the CLI that starts them:

    intake.py   pushed: the HTTP endpoint Siebel's workflow posts member events to (Starlette, served by
                `sync_worker.http`); 202 only once the queue has confirmed the event
    poller.py   pulled: reads members changed since the last watermark, by key, and publishes an event for each

Both speak to the rest through the core's ports (`MemberStore`, `EventPublisher`): imports the core, `config`,
Starlette and pydantic; no adapter. The composition root (`sync_worker.bootstrap`) wires them.
"""
