"""Where a worker's time goes: py-spy samples a real `ct-sync worker` draining a backlog (ceiling conditions) and
this prints the share of samples in each function, inclusive. Needs py-spy (`pip install py-spy`).

Usage: python -m bench.profile [--members 6000] [--seconds 12] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.harness import CT_SYNC, RABBITMQ_URL, Stage, sandbox_control, sandbox_process
from bench.run import enroll_events


def top_functions(raw: Path, *, limit: int = 120) -> list[tuple[float, str]]:
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        seen: set[str] = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            key = f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]}" if where else name
            if key not in seen:
                inclusive[key] += samples
                seen.add(key)
    return [(count * 100 / total, key) for key, count in inclusive.most_common(limit)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=6000)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=16, help="CTSYNC_WORKER__CONCURRENCY (sync threads)")
    arguments = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as sandbox:
        sandbox_control(sandbox)
        stage = Stage.fresh(Path(tmp), broker_url=RABBITMQ_URL)
        stage.publish(enroll_events(stage.seed(arguments.members)))
        env = stage.env(sandbox, CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE="10000000",
                        CTSYNC_WORKER__CONCURRENCY=str(arguments.concurrency))  # fmt: skip
        worker = subprocess.Popen([CT_SYNC, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raw = Path(tmp) / "profile.txt"
        try:
            time.sleep(3)  # past start-up
            subprocess.run(
                [py_spy, "record", "--pid", str(worker.pid), "--duration", str(arguments.seconds), "--format", "raw",
                 "-o", str(raw), "--gil"],  # only the thread holding the GIL: CPU, not waiting
                check=True, capture_output=True,
            )  # fmt: skip
        finally:
            worker.terminate()
            worker.wait(60)
            stage.cleanup()
        for share, function in top_functions(raw):
            print(f"{share:5.1f}%  {function}")


if __name__ == "__main__":
    main()
