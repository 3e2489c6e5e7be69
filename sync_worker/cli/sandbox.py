"""`ct-sync sandbox`: a CrowdTwist and a Siebel to rehearse on, on 127.0.0.1.

    ct-sync sandbox [--port --siebel-port --sftp-port --api-key]   serve the emulators until interrupted
    ct-sync sandbox seed --members N [--bad-share 0.05]             fill the Siebel stand-in it serves
    ct-sync sandbox faults [--down/--up --latency --error-share --rate-limit]   CrowdTwist's fault switches, live

Seeded members are realistic and deterministic (the same `--seed`, the same members); a share of them carries data
CrowdTwist refuses, one defect each, so a rehearsal shows Data Errors as production will.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from contextlib import ExitStack
from typing import Annotated, Any

import typer

from sync_worker.cli.app import ExitCode, app, fail, or_exit, say, settings_or_exit

sandbox_app = typer.Typer(help="A CrowdTwist and a Siebel to rehearse on, on 127.0.0.1.")
app.add_typer(sandbox_app, name="sandbox", rich_help_panel="Try it without production systems")

SANDBOX_PROGRAM = "1-SANDBOX"  # the program of seeded members when CTSYNC_SIEBEL__PROGRAM_ID names none
_FIRST = ("Maria", "Liam", "Chen", "Amara", "Sofia", "Noah", "Aisha", "Mateo", "Yuki", "Olga", "Kwame", "Priya")
_LAST = ("Garcia", "O'Brien", "Wei", "Okafor", "Rossi", "Kim", "Haddad", "Silva", "Tanaka", "Novak", "Mensah", "Rao")
# One defect each, what CrowdTwist (or ct-sync's check of its rules, before any call) refuses.
_DEFECTS: dict[str, dict[str, str]] = {
    "empty Last Name": {"Last Name": ""},
    "a Last Name character CrowdTwist refuses": {"Last Name": "Bright★"},
    "an Email Address that is none": {"Email Address": "not-an-email"},
    "a US postal code that is not a ZIP": {"Primary Postal Code": "ABCDE"},
    "the Email Address of member SB-0000001 (CrowdTwist: already taken)": {},  # filled in by `seed`
}
_TAKEN = "the Email Address of member SB-0000001 (CrowdTwist: already taken)"
_TIERS = ("Bronze", "Silver", "Gold")
_SEED_BATCH = 10_000
CrowdTwistPort = Annotated[int, typer.Option(help="CrowdTwist sandbox port")]


@sandbox_app.callback(invoke_without_command=True)
def sandbox(
    context: typer.Context,
    port: CrowdTwistPort = 8765,
    siebel_port: Annotated[int, typer.Option(help="Siebel REST emulator port")] = 8766,
    sftp_port: Annotated[int, typer.Option(help="SFTP drop folder port (CrowdTwist's segment folder)")] = 8022,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="the key every CrowdTwist call must carry; a wrong or missing one gets 403 "
            "(default: CTSYNC_CROWDTWIST__API_KEY; with neither, any key is accepted)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the CrowdTwist and Siebel REST emulators and an SFTP drop folder on 127.0.0.1 until interrupted;
    `seed` fills the Siebel stand-in, `faults` switches CrowdTwist's faults while it runs."""
    if context.invoked_subcommand is not None:
        return
    from sandbox.crowdtwist import SandboxState, create_sandbox_app
    from sandbox.servers import SiebelEmulatorServer
    from sandbox.sftp import SANDBOX_USER, SandboxSftpServer, ensure_sandbox_keys
    from sandbox.siebel.emulator import SiebelEmulator
    from siebel_adapter.sqlite_store import SqliteMemberStore
    from sync_worker.http import bind_problem, serve_forever

    settings = settings_or_exit()
    configured_key = settings.crowdtwist.api_key.get_secret_value() if settings.crowdtwist.api_key else None
    required_key = api_key or configured_key
    username = settings.siebel.username or "CTSYNC"
    password = settings.siebel.password.get_secret_value() if settings.siebel.password else "sandbox"
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    emulator = SiebelEmulator(store, username=username, password=password)
    keys = ensure_sandbox_keys(settings.data_dir / "sandbox-sftp-keys", port=sftp_port)
    with ExitStack() as serving:
        siebel = or_exit(
            lambda: serving.enter_context(SiebelEmulatorServer(emulator, port=siebel_port, setting="--siebel-port"))
        )
        try:
            sftp = serving.enter_context(SandboxSftpServer(settings.data_dir / "sandbox-sftp", keys, port=sftp_port))
        except OSError as exc:
            fail(ExitCode.CONFIGURATION, f"ct-sync: --sftp-port: {bind_problem(exc, '127.0.0.1', sftp_port)}")
        say(f"Siebel REST emulator on {siebel.base_url} (Basic auth as {username}), data in {store.path}")
        say(
            f"SFTP drop folder on 127.0.0.1:{sftp.port}, files land in {sftp.folder}; send segments there with\n"
            f"  CTSYNC_SFTP__HOST=127.0.0.1 CTSYNC_SFTP__PORT={sftp.port} CTSYNC_SFTP__USERNAME={SANDBOX_USER} "
            f"CTSYNC_SFTP__KEY_FILE={keys.user_key.resolve()} CTSYNC_SFTP__KNOWN_HOSTS={keys.known_hosts.resolve()}"
        )
        source = "--api-key" if api_key else "CTSYNC_CROWDTWIST__API_KEY"
        key_rule = f"requires the API key of {source}" if required_key else "accepts any API key (none configured)"
        say(
            f"CrowdTwist sandbox on http://127.0.0.1:{port}, {key_rule}; its faults: "
            f"ct-sync sandbox faults --port {port} (--down, --latency, --error-share, --rate-limit)"
        )
        or_exit(
            lambda: serve_forever(
                create_sandbox_app(SandboxState(api_key=required_key)),
                host="127.0.0.1", port=port, setting="--port", name="CrowdTwist sandbox",
            )
        )  # fmt: skip


@sandbox_app.command("seed")
def seed(
    members: Annotated[int, typer.Option("--members", min=1, help="how many members")],
    bad_share: Annotated[
        float, typer.Option("--bad-share", min=0.0, max=1.0, help="the share with data CrowdTwist refuses")
    ] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="the same seed, the same members")] = 1,
) -> None:
    """Fill the Siebel stand-in the sandbox serves with N members (SB-0000001 …), as one bulk load: the next
    `ct-sync poll` publishes them. Seeding again replaces them."""
    from siebel_adapter.sqlite_store import SqliteMemberStore

    settings = settings_or_exit()
    program = settings.siebel.program_id or SANDBOX_PROGRAM
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    rng = random.Random(seed)
    # Member SB-0000001 is never flawed: the others' "taken" email is its own.
    flawed = set(rng.sample(range(2, members + 1), min(round(members * bad_share), members - 1)))
    taken = {"Email Address": sandbox_member(1, program=program, seed=seed)["Email Address"]}
    defects: Counter[str] = Counter()

    def member(number: int) -> dict[str, str]:
        document = sandbox_member(number, program=program, seed=seed)
        if number in flawed:
            defect = rng.choice(sorted(_DEFECTS))
            document.update(taken if defect == _TAKEN else _DEFECTS[defect])
            defects[defect] += 1
        return document

    for start in range(1, members + 1, _SEED_BATCH):  # one transaction a batch: memory stays one batch
        batch = [member(number) for number in range(start, min(start + _SEED_BATCH, members + 1))]
        or_exit(functools.partial(store.load_members, batch))
    say(f"seeded {members} members of program {program} into {store.path}")
    for defect, count in defects.most_common():
        say(f"  {count} with {defect}")
    if settings.siebel.program_id is None:
        say(f"set CTSYNC_SIEBEL__PROGRAM_ID={program} for the worker and the poll to take them as the program's")
    say("next: ct-sync poll publishes them (through the REST emulator with CTSYNC_SIEBEL__BACKEND=rest and")
    say("  CTSYNC_SIEBEL__BASE_URL=http://127.0.0.1:8766/siebel/v1.0, as against a real Siebel)")


def sandbox_member(number: int, *, program: str, seed: int) -> dict[str, str]:
    """A valid Active Individual member with a Tier, as Siebel holds one; the same number and seed, the same
    member."""
    rng = random.Random(seed * 10_000_019 + number)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "Id": f"1-SB{number:07d}",
        "Member Number": f"SB-{number:07d}",
        "Status": "Active",
        "Member Type": "Individual",
        "Program Id": program,
        "First Name": first,
        "Last Name": last,
        "Email Address": f"{first}.{last}.{number}@example.com".lower().replace("'", ""),
        "Date of Birth": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1950, 2005)}",
        "Primary Postal Code": f"{rng.randint(10001, 99950):05d}",
        "Primary City": "New York",
        "Primary Country Code": "US",
        "M/F": rng.choice(("M", "F")),
        "Language": "ENU",
        # A loyalty tier as programs have them (most members at the bottom), for segments: --where "Tier=Gold".
        "Tier": rng.choices(_TIERS, weights=(60, 30, 10))[0],
    }


@sandbox_app.command("faults")
def faults(
    port: CrowdTwistPort = 8765,
    down: Annotated[
        bool | None, typer.Option("--down/--up", help="every call answered 503 (maintenance), or not")
    ] = None,
    latency: Annotated[str | None, typer.Option(help="every answer this late, e.g. 200ms; 0 for none")] = None,
    error_share: Annotated[
        float | None, typer.Option("--error-share", min=0.0, max=1.0, help="share of calls answered 500")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=0, help="calls a minute before 429s (leaky bucket); 0: none")
    ] = None,
) -> None:
    """Switch the running CrowdTwist sandbox's faults (those not named stay as they are) and print them all."""
    import httpx

    from config.durations import parse_duration

    switches: dict[str, Any] = {}
    if down is not None:
        switches["down"] = down
    if latency is not None:
        try:
            switches["latency"] = parse_duration(latency).total_seconds()
        except ValueError as exc:
            fail(ExitCode.CONFIGURATION, f"ct-sync sandbox faults: --latency: {exc}")
    if error_share is not None:
        switches["error_rate"] = error_share
    if rate_limit is not None:
        switches["rate_limit_per_minute"] = rate_limit or None
    url = f"http://127.0.0.1:{port}/_sandbox/faults"
    try:
        answer = httpx.post(url, json=switches, timeout=10)
    except httpx.TransportError:
        fail(ExitCode.UNREACHABLE, f"ct-sync sandbox faults: no sandbox answers on 127.0.0.1:{port} (ct-sync sandbox)")
    if answer.status_code != 200:
        fail(ExitCode.CONFIGURATION, f"ct-sync sandbox faults: the sandbox refused: {answer.text[:200]}")
    say(f"CrowdTwist sandbox on 127.0.0.1:{port}, its faults now:")
    for line in fault_lines(answer.json()):
        say(f"  {line}")


def fault_lines(faults: dict[str, Any]) -> list[str]:
    """The sandbox's switches as this command's own flags (the sandbox names them `error_rate`, …): each flag as
    it would set the state shown, and what it means; switches with no flag only when set."""
    from sandbox.crowdtwist.switches import Faults

    latency_ms = round(float(faults.get("latency") or 0) * 1000)
    latency = f"{latency_ms}ms" if latency_ms % 1000 else f"{latency_ms // 1000}s"
    share = float(faults.get("error_rate") or 0)
    limit = faults.get("rate_limit_per_minute")
    flags = [
        ("--down", "every call answered 503 (maintenance)")
        if faults.get("down")
        else ("--up", "calls answered as usual"),
        (f"--latency {latency}", "every answer this late" if latency_ms else "answers at once"),
        (f"--error-share {share:g}", "that share of calls answered 500" if share else "no call answered 500"),
        (f"--rate-limit {limit:g}", "calls a minute, then 429s") if limit else ("--rate-limit 0", "no rate limit"),
    ]
    lines = [f"{flag:<22}{meaning}" for flag, meaning in flags]
    unflagged = {name: value for name, value in faults.items() if name not in _FLAGGED}
    changed = {name: value for name, value in unflagged.items() if getattr(Faults(), name, value) != value}
    if changed:  # set over HTTP (tests, benchmarks): shown under the sandbox's own names, the only ones they have
        settings = ", ".join(f"{name}={value}" for name, value in changed.items())
        lines.append(f"also set over HTTP (POST /_sandbox/faults): {settings}")
    return lines


_FLAGGED = ("down", "latency", "error_rate", "rate_limit_per_minute")
