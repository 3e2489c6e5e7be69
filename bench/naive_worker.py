"""The naive baseline, shaped like the flow ct-sync replaces: one member at a time (prefetch 1), a look-up, then a
create or an update (two CrowdTwist calls per member), no coalescing, no skipping of unchanged members. It uses
ct-sync's own mapping and store, so the difference measured is the design, not the plumbing.

Run by bench/run.py as `python -m bench.naive_worker` with the same CTSYNC_* settings as the real worker.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from kombu.messaging import Consumer

from config import load_settings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.mapping import map_member
from sync_worker.core.member import SyncOutcome, SyncStatus
from sync_worker.core.messages import decode_event
from sync_worker.queue.broker import open_broker
from sync_worker.queue.topology import QueueTopology


def main() -> None:
    settings = load_settings()
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    topology = QueueTopology.from_settings(settings.broker)
    http = httpx.Client(base_url=settings.crowdtwist.base_url, timeout=30)

    def on_message(message) -> None:  # type: ignore[no-untyped-def]
        event = decode_event(message.body)
        member = store.get_member(event.member_number)
        if member is None:
            message.ack()
            return
        payload = map_member(member, settings.defaults).payload
        path = f"/v2/users/{member.member_number}"
        found = http.get(path, params={"id_type": "third_party_id"})
        if found.status_code == 404:
            answer = http.post("/v2/users", json=payload.for_create().body())
        else:
            answer = http.put(path, params={"id_type": "third_party_id"}, json=payload.body())
        status = SyncStatus.SYNCED if answer.status_code == 200 else SyncStatus.CT_FAILURE
        ct_user_id = answer.json().get("id") if answer.status_code == 200 else None
        store.write_outcome(member.row_id, SyncOutcome(status=status, ct_user_id=ct_user_id, at=datetime.now(UTC)))
        message.ack()

    with open_broker(settings) as connection:
        channel = connection.channel()
        channel.basic_qos(0, 1, False)
        topology.work_queue.bind(channel).declare()
        with Consumer(channel, queues=[topology.work_queue], on_message=on_message):
            while True:
                try:
                    connection.drain_events(timeout=1)
                except TimeoutError:
                    continue


if __name__ == "__main__":
    main()
