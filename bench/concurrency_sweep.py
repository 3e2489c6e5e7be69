"""The ceiling scenario at several sync-thread counts, one run each: how concurrency trades against the GIL.

Usage: python -m bench.concurrency_sweep [--members 5000] 4 16
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.harness import RABBITMQ_URL, Stage, run_worker, sandbox_control, sandbox_process
from bench.run import WORKER, enroll_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("concurrency", nargs="+")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as sandbox:
        for concurrency in arguments.concurrency:
            sandbox_control(sandbox)
            stage = Stage.fresh(Path(tmp), broker_url=RABBITMQ_URL)
            try:
                stage.publish(enroll_events(stage.seed(arguments.members)))
                env = stage.env(
                    sandbox, CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE="10000000", CTSYNC_WORKER__CONCURRENCY=concurrency
                )
                measured = run_worker(WORKER, env, stage=stage, members=arguments.members, sandbox_url=sandbox,
                                      timeout=900)  # fmt: skip
                print(f"concurrency {concurrency}: {measured.as_dict()}", flush=True)
            finally:
                stage.cleanup()


if __name__ == "__main__":
    main()
