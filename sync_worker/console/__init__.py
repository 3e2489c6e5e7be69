"""The console: the web pages administrators used OIC's monitoring for (design.md, Part 2, "Console").
Server-rendered HTML from Jinja2 templates, plain forms, no script and no build step; `sync_worker.http` serves it.

    app.py        the Starlette app: routes, sessions, security headers
    security.py   login sessions, bearer tokens, CSRF tokens: who may look and act
    login.py      the login page
    pages.py      overview, failures, one member, dead letters, job runs (GET: nothing changes)
    actions.py    resubmit one member or by status, replay or discard dead letters: confirm (GET), then do (POST)
    rendering.py  templates (everything escaped), what every page shows
    backend.py    what the console reads and acts through, handed in by the composition root
    templates/, static/   the pages and their stylesheet

At the level of the worker: imports the core, the ledger and config; the adapters come in through the backend.
"""
