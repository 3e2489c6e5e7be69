"""Segment export benchmark, one command: `python -m bench.segment_export [--members 5000000]`.

A segment of N members from the SQLite stand-in for Siebel, written and uploaded by `ct-sync segment export` (a real
process) to a real OpenSSH sshd on loopback; then OpenSSH's own `sftp` uploads the same file with the same cipher.
Figures: rows/s and MB/s of the whole export, MB/s of ct-sync's upload phase (from the run's log times) against
`sftp`'s, their ratio, and the export process's peak RSS. Needs root and /usr/sbin/sshd (tests/sshd.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import SiebelSettings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.ledger.runs import RunLedger
from tests.sshd import SshServer

CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))
CIPHER = "aes128-ctr"  # what paramiko picks first among CrowdTwist's three; sftp is told the same
_BATCH = 100_000


def seed(store: SqliteMemberStore, members: int) -> None:
    """N Active Individual members of tier Gold that CrowdTwist knows (a CT User Id each), in batches."""
    for start in range(0, members, _BATCH):
        store.load_members(
            [
                {
                    "Id": f"1-{n}",
                    "Member Number": f"296-{n:08d}",
                    "Status": "Active",
                    "Member Type": "Individual",
                    "Program Id": "1-PRG",
                    "Last Name": "Lee",
                    "Tier": "Gold",
                    "Updated": "2026-11-22T10:00:00Z",
                    "CT User Id": str(500_000_000 + n),
                }
                for n in range(start, min(start + _BATCH, members))
            ]
        )


def export(data_dir: Path, server: SshServer) -> dict[str, Any]:
    """Run `ct-sync segment export` as its own process; wall time, peak RSS, and the run's phase times."""
    env = {**os.environ, "CTSYNC_DATA_DIR": str(data_dir), "CTSYNC_SIEBEL__PROGRAM_ID": "1-PRG"}
    env.update(server.environment())
    env["CTSYNC_SFTP__CIPHERS"] = CIPHER
    started = time.perf_counter()
    process = subprocess.Popen(
        [CT_SYNC, "segment", "export", "Bench", "--where", "Tier=Gold"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"export failed ({process.returncode}): {stderr.decode()[-2000:]}")
    runs = RunLedger(f"sqlite:///{data_dir / 'ledger.sqlite'}")
    run = runs.runs(job="cli-segment-Bench", limit=1)[0]
    upload_started = next(at for at, line in runs.log_lines(run.run_id) if line.startswith("uploading "))
    runs.close()
    assert run.finished_at is not None
    return {
        "seconds": seconds,
        "rows": run.counts["rows"],
        "bytes": run.counts["bytes"],
        "file": run.files[0],
        "upload_seconds": (run.finished_at - upload_started).total_seconds(),
        "write_seconds": (upload_started - run.started_at).total_seconds(),
        "peak_rss_mb": _peak_rss_mb(),
        "output": stdout.decode(),
    }


def sftp_upload(server: SshServer, path: Path) -> float:
    """Seconds OpenSSH's `sftp` takes to upload `path` (login included, as for ct-sync)."""
    batch = path.with_suffix(".batch")
    batch.write_text(f"put {path} sftp-{path.name}\n")
    started = time.perf_counter()
    subprocess.run(
        [
            "sftp", "-q", "-b", str(batch), "-i", str(server.user_key), "-P", str(server.port),
            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", f"Ciphers={CIPHER}", "-o", "BatchMode=yes",
            f"{server.username}@127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def run(members: int, workdir: Path) -> dict[str, Any]:
    data_dir = workdir / "data"
    store = SqliteMemberStore(data_dir / "siebel.sqlite", SiebelSettings(), page_size=100)
    seeding = time.perf_counter()
    seed(store, members)
    seeded = time.perf_counter() - seeding
    server = SshServer(workdir / "sshd").start()
    try:
        ours = export(data_dir, server)
        archived = data_dir / "archive" / ours["file"]
        theirs = sftp_upload(server, archived)
    finally:
        server.stop()
    megabytes = ours["bytes"] / 1e6
    return {
        "members": members,
        "seed_seconds": round(seeded, 1),
        "rows": ours["rows"],
        "file_mb": round(megabytes, 1),
        "export_seconds": round(ours["seconds"], 2),
        "export_rows_per_s": round(ours["rows"] / ours["seconds"]),
        "export_mb_per_s": round(megabytes / ours["seconds"], 1),
        "write_seconds": round(ours["write_seconds"], 2),
        "ct_sync_upload_seconds": round(ours["upload_seconds"], 2),
        "ct_sync_upload_mb_per_s": round(megabytes / ours["upload_seconds"], 1),
        "sftp_upload_seconds": round(theirs, 2),
        "sftp_upload_mb_per_s": round(megabytes / theirs, 1),
        "upload_ratio": round(theirs / ours["upload_seconds"], 2),
        "peak_rss_mb": ours["peak_rss_mb"],
    }


def _peak_rss_mb() -> float:
    """The largest child waited for so far: the export (seeding ran in this process, sshd is still running)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=5_000_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ct-sync-segment-bench-") as workdir:
        result = run(arguments.members, Path(workdir))
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(__file__).parent / "results" / f"segment-export-{arguments.members}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
