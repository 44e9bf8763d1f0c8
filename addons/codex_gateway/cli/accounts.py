"""`codex-gateway accounts …` (also `scripts/accounts.py …`): the gateway's ChatGPT accounts.

    codex-gateway accounts login [--device]          sign in (browser with PKCE on localhost:1455, or device code)
    codex-gateway accounts list | status [--json]    accounts, token expiry, quotas, cooldowns, pin and exclusions
    codex-gateway accounts remove <id|email>         delete a gateway login (never the Codex CLI's own)
    codex-gateway accounts use <id|email> | auto     pin one account for every request / choose automatically again
    codex-gateway accounts exclude|include <id|email>   keep an account out of automatic choice, or back in
    codex-gateway accounts export [<id|email>…|--all] [-o FILE]   a JSON bundle of logins (holds credentials!)
    codex-gateway accounts import FILE               that bundle, AI-Zero-Token's exports, or a Codex auth.json
    codex-gateway accounts apply-codex <id|email>    make the Codex CLI run as that account ($CODEX_HOME/auth.json)
    codex-gateway accounts quota [<id|email>] [--refresh]   last quota windows; --refresh reads them fresh
    codex-gateway accounts migrate --to redis://…|files     copy the whole state into another store

New logins go to `gateway_home/accounts/<account_id>.json` (0600, the Codex CLI's auth.json layout); the Codex
CLI's own `$CODEX_HOME/auth.json` is always used as well and only `apply-codex` writes it (after a backup).
Pins and exclusions live in `gateway_home/selection.json`; a running gateway applies them at its next request.
With `--state redis://…` (or `CODEX_GATEWAY_STATE`) every command works on the shared store of a team's gateways
instead (see the README's "Running several gateways").
Nothing here prints a token, except `export` without `-o`, which prints the bundle itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from .. import __version__
from ..accounts import manage
from ..accounts.auth_file import default_codex_home
from ..accounts.auth_file import default_gateway_home
from ..accounts.auth_file import short_id
from ..accounts.backends import open_backend
from ..accounts.login_store import StoreUnavailable
from ..accounts.manage import AccountError
from ..accounts.migrate import migrate
from ..accounts.oauth import DEFAULT_ISSUER
from ..accounts.oauth import DEFAULT_PORT
from ..accounts.oauth import TIMEOUT
from ..accounts.oauth import OAuthError
from ..accounts.oauth import TokenResponse
from ..accounts.oauth import browser_login
from ..accounts.oauth import device_login
from ..accounts.pool import AccountPool
from ..accounts.pool import format_status
from ..accounts.pool import save_login
from ..accounts.state import StateBackend
from ..accounts.state import StateConfig
from ..accounts.usage import DEFAULT_CONCURRENCY
from ..accounts.usage import QuotaReading
from ..accounts.usage import format_quota
from ..accounts.usage import refresh_quotas
from ..accounts.usage import usage_url
from ..upstream.client import upstream_client
from ..upstream.proxy import ProxyConfig
from ..upstream.proxy import proxy_config
from .args import Parser
from .args import add_login_options
from .args import fail
from .progress import Progress

__all__ = ["main"]

PROG = "codex-gateway accounts"
POLL_ENV = "CODEX_GATEWAY_DEVICE_POLL_INTERVAL"
DEFAULT_UPSTREAM = "https://chatgpt.com/backend-api/codex"


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    args = _parser(prog).parse_args(argv)
    given = vars(args)
    issuer = (given.get("issuer") or os.environ.get("CODEX_AUTH_ISSUER") or DEFAULT_ISSUER).rstrip("/")
    gateway_home = Path(given["gateway_home"]).expanduser() if given.get("gateway_home") else default_gateway_home()
    codex_home = Path(given["codex_home"]).expanduser() if given.get("codex_home") else default_codex_home()
    try:
        config = StateConfig.from_env(url=given.get("state"), prefix=given.get("state_prefix"))
    except ValueError as exc:
        return fail(f"{prog} {args.command}", str(exc), 2)
    backend = open_backend(config, codex_home, gateway_home, issuer, command=True)
    try:
        asyncio.run(backend.ready())  # the shared store's state (files: nothing to do)
        pool = AccountPool(codex_home, gateway_home, issuer, backend=backend)
        try:
            if args.command == "migrate":
                return _migrate(args, backend, (codex_home, gateway_home, issuer))
            return _run(args, pool, issuer, gateway_home, prog)
        finally:
            asyncio.run(backend.aclose())  # writes what the command changed in the shared store
    except AccountError as exc:
        return fail(f"{prog} {args.command}", str(exc))
    except StoreUnavailable as exc:
        return fail(f"{prog} {args.command}", str(exc))


def _migrate(args: argparse.Namespace, source: StateBackend, homes: tuple[Path, Path, str]) -> int:
    """Copies the whole state (accounts, cooldowns, quota, pin and exclusions) into the store `--to` names."""
    try:
        config = StateConfig.from_env(url=args.to, prefix=args.to_prefix)
    except ValueError as exc:
        raise AccountError(f"--to: {exc}") from None
    target = open_backend(config, *homes, command=True)

    async def copy() -> list[str]:
        try:
            await target.ready()
            return await migrate(source, target)
        finally:
            await target.aclose()

    for line in asyncio.run(copy()):
        print(line)
    print(f"Copied {source.address} into {target.address}; the source is unchanged.")
    return 0


def _run(args: argparse.Namespace, pool: AccountPool, issuer: str, gateway_home: Path, prog: str) -> int:
    command = args.command
    if command == "login":
        return _login(args, issuer, gateway_home, pool)
    if command == "remove":
        return _remove(args.target, pool, prog)
    if command in ("list", "status"):
        return _show(args, pool, prog)
    if command == "use":
        print(manage.use(pool, args.target))
    elif command == "auto":
        print(manage.auto(pool))
    elif command == "exclude":
        print(manage.exclude(pool, args.target))
    elif command == "include":
        print(manage.include(pool, args.target))
    elif command == "export":
        return _export(args, pool)
    elif command == "import":
        for line in manage.import_file(pool, Path(args.file).expanduser()):
            print(line)
    elif command == "apply-codex":
        print(manage.apply_codex(pool, args.target))
    elif command == "quota":
        return _quota(args, pool, prog)
    return 0


def _show(args: argparse.Namespace, pool: AccountPool, prog: str) -> int:
    rows = pool.status()
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not rows:
        print(f"No accounts. Log in with `codex login` or `{prog} login`.")
        return 0
    if args.command == "status":
        print(format_status(rows))
    else:
        for r in rows:
            flags = "pinned" if r["pinned"] else "excluded" if r["excluded"] else "-"
            print(f"{r['label']}\t{r['plan'] or '-'}\t{r['account']}\t{r['source']}\t{flags}\t{r['file']}")
    if note := pool.selection_note():
        print(note)
    return 0


def _export(args: argparse.Namespace, pool: AccountPool) -> int:
    bundle = manage.export_accounts(pool, args.targets, everything=args.all)
    count = len(bundle["profiles"])
    if args.output is None:
        print(manage.EXPORT_WARNING.format(path="this output", n=count), file=sys.stderr)
        print(orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode())
        return 0
    path = Path(args.output).expanduser()
    manage.write_export(path, bundle)
    print(f"exported {count} account(s) to {path} (mode 0600)")
    print(manage.EXPORT_WARNING.format(path=path, n=count), file=sys.stderr)
    return 0


def _quota(args: argparse.Namespace, pool: AccountPool, prog: str) -> int:
    rows = pool.status()
    if args.target is not None:
        key = manage.find_account(pool, args.target)["account_id"]
        rows = [r for r in rows if r["account_id"] == key]
    rows = [r for r in rows if not str(r["account_id"]).startswith("file:")]
    if not rows:
        print(f"No accounts. Log in with `codex login` or `{prog} login`.")
        return 0
    if args.concurrency < 1:
        raise AccountError("--concurrency must be at least 1")
    failed: list[QuotaReading] = []
    if args.refresh:
        upstream = (args.upstream or os.environ.get("CODEX_UPSTREAM") or DEFAULT_UPSTREAM).rstrip("/")
        if not upstream.startswith(("http://", "https://")):
            raise AccountError(f"--upstream must be an http(s) URL, not {upstream!r}")
        wanted = [r["account_id"] for r in rows]
        readings = asyncio.run(_refresh(pool, wanted, usage_url(upstream), args.concurrency, _proxy(args)))
        failed = [r for r in readings if r.error]
        keys = {r["account_id"] for r in rows}
        rows = [r for r in pool.status() if r["account_id"] in keys]
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_quota(rows))
    for reading in failed:
        print(f"{prog} quota: {reading.label}: {reading.error}", file=sys.stderr)
    return 1 if failed else 0


async def _refresh(
    pool: AccountPool, keys: list[str], url: str, concurrency: int, proxy: ProxyConfig
) -> list[QuotaReading]:
    progress = Progress(len(keys), "quota readings")
    progress.start()

    def report(reading: QuotaReading) -> None:
        line = f"[{progress.done + 1}/{progress.total}] {reading.label}: {reading.error or 'ok'}"
        progress.advance(None if progress.tty else line)  # a terminal shows the bar, a log gets the lines

    headers = {"User-Agent": f"codex_gateway/{__version__}", "originator": "codex_gateway"}
    async with upstream_client(proxy, TIMEOUT) as client:
        pool.use_http(client)  # token refreshes on the way take the same route
        try:
            return await refresh_quotas(
                pool, keys, url, client, headers=headers, concurrency=concurrency, on_reading=report
            )
        finally:
            progress.close()


def _proxy(args: argparse.Namespace) -> ProxyConfig:
    """`--proxy`/`--no-proxy`, else the environment's proxy settings, read as the gateway reads them."""
    try:
        return proxy_config(getattr(args, "proxy", None), getattr(args, "no_proxy", None) or "", os.environ)
    except ValueError as e:
        raise AccountError(str(e)) from None


async def _sign_in(
    args: argparse.Namespace, issuer: str, announce: Callable[[str], None], proxy: ProxyConfig
) -> TokenResponse:
    target = urlsplit(issuer)
    if proxy.for_target(target.scheme, target.hostname or "") is not None:
        announce(proxy.describe(target.scheme, target.hostname or ""))
    async with upstream_client(proxy, TIMEOUT) as http:
        if args.device:
            interval = args.poll_interval if args.poll_interval is not None else _env_float(POLL_ENV)
            return await device_login(
                issuer, announce=announce, poll_interval=interval, timeout=args.timeout or 900, http=http
            )
        return await browser_login(
            issuer,
            announce=announce,
            port=args.port,
            open_browser=None if args.no_browser else _open_browser,
            paste_source=sys.stdin.readline if sys.stdin is not None else None,
            timeout=args.timeout or 600,
            http=http,
        )


def _login(args: argparse.Namespace, issuer: str, gateway_home: Path, pool: AccountPool) -> int:
    def announce(text: str) -> None:
        print(text, flush=True)

    proxy = _proxy(args)
    try:
        tokens = asyncio.run(_sign_in(args, issuer, announce, proxy))
        path, record = save_login(gateway_home, tokens, backend=pool.backend)
    except (OAuthError, ValueError, OSError) as exc:
        print(f"Login failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Login cancelled.", file=sys.stderr)
        return 130
    print(f"Logged in as {record.label} ({record.plan or 'unknown plan'}, account {short_id(record.account_id)}).")
    print(f"Saved to {path}")
    twin = [r for r in pool.status() if r["source"] == "codex" and r["account"] == short_id(record.account_id)]
    if twin:
        print("This is also the Codex CLI's account; the gateway uses whichever of the two files is fresher.")
    return 0


def _remove(target: str, pool: AccountPool, prog: str) -> int:
    row = manage.find_account(pool, target)
    paths = pool.files().get(row["account_id"], [])
    removed = pool.backend.remove_login(row["account_id"])  # never the Codex CLI's own login
    for where in removed:
        print(f"Removed {row['label']} ({where}).")
    if pool.codex_file in paths:
        print(
            f"{row['label']} is the Codex CLI's login ({pool.codex_file}); the gateway keeps using it. "
            "Remove it with `codex logout`.",
            file=sys.stderr,
        )
        return 0 if removed else 1
    return 0


def _open_browser(url: str) -> None:
    # Without a display, webbrowser would start a console browser (lynx, w3m) in this terminal: don't.
    if sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        try:
            webbrowser.open(url)
        except webbrowser.Error:
            pass


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _parser(prog: str) -> argparse.ArgumentParser:
    # Accepted before or after the subcommand; SUPPRESS keeps a subparser from erasing what the main parser got.
    common = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    add_login_options(common)
    common.add_argument("--state", help="files, or redis://[:password@]host:port/db (env CODEX_GATEWAY_STATE)")
    common.add_argument("--state-prefix", help="key prefix in Redis (env CODEX_GATEWAY_STATE_PREFIX)")
    parser = Parser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help_text, description=help_text)

    login = command("login", "sign in with a ChatGPT account")
    login.add_argument("--device", action="store_true", help="device-code login (no browser on this machine)")
    login.add_argument("--port", type=int, default=DEFAULT_PORT, help="callback port (0 = any free port)")
    login.add_argument("--no-browser", action="store_true", help="only print the URL")
    login.add_argument("--poll-interval", type=float, help=f"device-code poll interval in s (env {POLL_ENV})")
    login.add_argument("--timeout", type=float, help="seconds to wait for the sign-in")
    command("list", "list accounts").add_argument("--json", action="store_true")
    command("status", "tokens' expiry, quotas, cooldowns, pin and exclusions").add_argument(
        "--json", action="store_true"
    )
    for name, help_text in (
        ("remove", "remove a gateway account"),
        ("use", "pin one account for every request"),
        ("exclude", "keep an account out of automatic choice"),
        ("include", "let an excluded account be chosen again"),
        ("apply-codex", "write the account into $CODEX_HOME/auth.json (backing up the file there)"),
    ):
        command(name, help_text).add_argument("target", help="account id, short id or email")
    command("auto", "choose accounts automatically again (undo `use`)")
    export = command("export", "write a JSON bundle of logins (it holds credentials: keep it private)")
    export.add_argument("targets", nargs="*", help="account ids or emails")
    export.add_argument("--all", action="store_true", help="every account")
    export.add_argument("-o", "--output", help="file to write (mode 0600); default: standard output")
    command("import", "import logins from a bundle, an AI-Zero-Token export or a Codex auth.json").add_argument(
        "file", help="the JSON file"
    )
    migrate_ = command("migrate", "copy the whole state (accounts, cooldowns, pin, exclusions) into another store")
    migrate_.add_argument("--to", required=True, help="redis://… or rediss://…, or files (this gateway_home)")
    migrate_.add_argument("--to-prefix", help="key prefix in the target Redis (default codex-gateway)")
    quota = command("quota", "each account's quota windows (used %%, reset time)")
    quota.add_argument("target", nargs="?", help="only this account (id or email)")
    quota.add_argument("--refresh", action="store_true", help="read fresh windows from the backend (costs nothing)")
    quota.add_argument("--upstream", help=f"the Codex backend (env CODEX_UPSTREAM; default {DEFAULT_UPSTREAM})")
    quota.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="readings at a time")
    quota.add_argument("--json", action="store_true")
    return parser
