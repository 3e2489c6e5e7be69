"""How many requests per second the CrowdTwist sandbox serves over real HTTP, alone on this machine.

The sandbox runs in its own process (as in the benchmarks); the load comes from another process with N threads,
each a keep-alive httpx client doing update-by-third_party_id (the worker's common call).
Usage: python -m bench.sandbox_throughput [--seconds 5] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
import time

import httpx

from sandbox.servers import SandboxServer


def _serve(port_queue: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    with SandboxServer() as server:
        port_queue.put(server.port)
        stop.wait()


def measure(*, seconds: float, threads: int, users: int = 1000) -> dict[str, float]:
    port_queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=_serve, args=(port_queue, stop), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{port_queue.get(timeout=10)}"
    with httpx.Client(base_url=base) as client:
        for number in range(users):
            body = {
                "third_party_id": f"296-{number}",
                "first_name": "Ann",
                "last_name": "Lee",
                "email_address": f"a{number}@example.com",
            }
            client.post("/v2/users", json=body).raise_for_status()
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def load(index: int) -> None:
        with httpx.Client(base_url=base) as client:
            number = index
            while time.monotonic() < deadline:
                response = client.put(
                    f"/v2/users/296-{number % users}", params={"id_type": "third_party_id"}, json={"last_name": "Li"}
                )
                assert response.status_code == 200
                counts[index] += 1
                number += threads

    started = time.monotonic()
    workers = [threading.Thread(target=load, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    stop.set()
    process.join(5)
    return {"requests": sum(counts), "seconds": round(elapsed, 2), "requests_per_s": round(sum(counts) / elapsed)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=8)
    arguments = parser.parse_args()
    print(json.dumps(measure(seconds=arguments.seconds, threads=arguments.threads)))
