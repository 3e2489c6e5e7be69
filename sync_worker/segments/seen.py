"""Identifiers already written to a segment file, so none is written twice, at any size.

A Python set of five million ids would take hundreds of MB; a temporary SQLite table keeps only its page cache in
memory (the rest spills to a temporary file that vanishes when it is closed).
"""

from __future__ import annotations

import sqlite3

_CACHE_KIB = 16 * 1024  # SQLite's page cache for the table: bounded, whatever the segment's size


class SeenIdentifiers:
    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)  # "": a private temporary database on disk
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (value TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction for the whole run: nothing here needs to survive it

    def add(self, value: str) -> bool:
        """True the first time `value` is added, False after."""
        return self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (value,)).rowcount == 1

    def close(self) -> None:
        self._db.close()
