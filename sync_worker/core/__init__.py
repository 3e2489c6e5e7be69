"""The pure core of ct-sync (filled in by the next commit)."""
