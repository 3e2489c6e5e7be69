"""CrowdTwist's drop folder, where segment files go: the SFTP server CrowdTwist gives a program (`sftp.py`), or a
local folder (`folder.py`, the embedded default for the demo and for trying things out). Both satisfy the core's
`FileDrop` port the same way: a file appears under its final name whole or not at all.
"""
