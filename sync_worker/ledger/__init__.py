"""The ledger (filled in by the next commit)."""
