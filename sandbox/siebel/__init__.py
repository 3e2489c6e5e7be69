"""An emulator of Siebel's REST member endpoints (`emulator.py`) over the SQLite stand-in, and the `searchspec`
reader it answers queries with (`search.py`)."""
