"""The worker (filled in by the next commit)."""
