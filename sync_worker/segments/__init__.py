"""Segment files for CrowdTwist (design.md, "Segment export"): the run that streams members from Siebel or from a
member list, leaves out who does not belong, writes the file, and hands it to the drop folder.

    export.py   the run: members in, file out, delivered and recorded (a job run, a delivery)
    sources.py  where members come from: Siebel by `--where`, or a CSV member list with its count file
    seen.py     the set of identifiers already written, on disk so memory stays flat at any size

Imports only the core (rules and ports); the composition (the CLI) hands it the store, the drop and the ledger.
"""
