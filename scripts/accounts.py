"""Manage the gateway's ChatGPT accounts: log in (browser or device code), list, remove, show status.

    .venv/bin/python scripts/accounts.py login            # browser sign-in (PKCE, callback on localhost:1455)
    .venv/bin/python scripts/accounts.py login --device   # headless: enter a code on any other device
    .venv/bin/python scripts/accounts.py list | status | remove <id|email>

New logins go to `gateway_home/accounts/<account_id>.json` (0600, the Codex CLI's auth.json layout); the Codex
CLI's own `$CODEX_HOME/auth.json` is always used as well, and is never modified by this script. Nothing here
prints a token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import webbrowser
from pathlib import Path

# Like addons/gateway.py: the package lives in addons/ and need not be pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

import orjson  # noqa: E402
from codex_gateway.accounts.auth_file import default_codex_home  # noqa: E402
from codex_gateway.accounts.auth_file import default_gateway_home  # noqa: E402
from codex_gateway.accounts.auth_file import short_id  # noqa: E402
from codex_gateway.accounts.oauth import DEFAULT_ISSUER  # noqa: E402
from codex_gateway.accounts.oauth import DEFAULT_PORT  # noqa: E402
from codex_gateway.accounts.oauth import OAuthError  # noqa: E402
from codex_gateway.accounts.oauth import TokenResponse  # noqa: E402
from codex_gateway.accounts.oauth import browser_login  # noqa: E402
from codex_gateway.accounts.oauth import device_login  # noqa: E402
from codex_gateway.accounts.pool import AccountPool  # noqa: E402
from codex_gateway.accounts.pool import format_status  # noqa: E402
from codex_gateway.accounts.pool import save_login  # noqa: E402

POLL_ENV = "CODEX_GATEWAY_DEVICE_POLL_INTERVAL"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    given = vars(args)
    issuer = (given.get("issuer") or os.environ.get("CODEX_AUTH_ISSUER") or DEFAULT_ISSUER).rstrip("/")
    gateway_home = Path(given["gateway_home"]).expanduser() if given.get("gateway_home") else default_gateway_home()
    codex_home = Path(given["codex_home"]).expanduser() if given.get("codex_home") else default_codex_home()
    pool = AccountPool(codex_home, gateway_home, issuer)
    if args.command == "login":
        return _login(args, issuer, gateway_home, pool)
    if args.command == "remove":
        return _remove(args.target, pool)
    rows = pool.status()
    if getattr(args, "json", False):
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        print(f"No accounts. Log in with `codex login` or `{_self()} login`.")
    elif args.command == "status":
        print(format_status(rows))
    else:
        for r in rows:
            print(f"{r['label']}\t{r['plan'] or '-'}\t{r['account']}\t{r['source']}\t{r['file']}")
    return 0


def _login(args: argparse.Namespace, issuer: str, gateway_home: Path, pool: AccountPool) -> int:
    def announce(text: str) -> None:
        print(text, flush=True)

    try:
        if args.device:
            interval = args.poll_interval if args.poll_interval is not None else _env_float(POLL_ENV)
            tokens: TokenResponse = asyncio.run(
                device_login(issuer, announce=announce, poll_interval=interval, timeout=args.timeout or 900)
            )
        else:
            tokens = asyncio.run(
                browser_login(
                    issuer,
                    announce=announce,
                    port=args.port,
                    open_browser=None if args.no_browser else _open_browser,
                    paste_source=sys.stdin.readline if sys.stdin is not None else None,
                    timeout=args.timeout or 600,
                )
            )
        path, record = save_login(gateway_home, tokens)
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


def _remove(target: str, pool: AccountPool) -> int:
    wanted = target.strip().lower()
    files = pool.files()
    matches = []
    for row in pool.status():
        key = row["account_id"]
        names = {key.lower(), str(row["account"]).lower(), str(row["email"] or "").lower(), str(row["label"]).lower()}
        names |= {path.stem.lower() for path in files.get(key, [])}
        if wanted in names or (len(wanted) >= 6 and key.lower().startswith(wanted)):
            matches.append(row)
    if not matches:
        print(f"No account matches {target!r}; see `{_self()} list`.", file=sys.stderr)
        return 1
    if len(matches) > 1:
        print(f"{target!r} matches {len(matches)} accounts; use the account id.", file=sys.stderr)
        return 1
    row = matches[0]
    paths = files.get(row["account_id"], [])
    removed = [p for p in paths if p != pool.codex_file]
    for path in removed:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".lock").unlink(missing_ok=True)
        print(f"Removed {row['label']} ({path}).")
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


def _self() -> str:
    return ".venv/bin/python scripts/accounts.py"


def _parser() -> argparse.ArgumentParser:
    # Accepted before or after the subcommand; SUPPRESS keeps a subparser from erasing what the main parser got.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--issuer", help=f"OAuth issuer (env CODEX_AUTH_ISSUER; default {DEFAULT_ISSUER})")
    common.add_argument("--gateway-home", help="gateway state directory (env CODEX_GATEWAY_HOME; ~/.codex-gateway)")
    common.add_argument("--codex-home", help="Codex CLI home with auth.json (env CODEX_HOME; ~/.codex)")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    login = sub.add_parser("login", parents=[common], help="sign in with a ChatGPT account")
    login.add_argument("--device", action="store_true", help="device-code login (no browser on this machine)")
    login.add_argument("--port", type=int, default=DEFAULT_PORT, help="callback port (0 = any free port)")
    login.add_argument("--no-browser", action="store_true", help="only print the URL")
    login.add_argument("--poll-interval", type=float, help=f"device-code poll interval in s (env {POLL_ENV})")
    login.add_argument("--timeout", type=float, help="seconds to wait for the sign-in")
    sub.add_parser("list", parents=[common], help="list accounts").add_argument("--json", action="store_true")
    sub.add_parser("status", parents=[common], help="tokens' expiry, quotas, cooldowns").add_argument(
        "--json", action="store_true"
    )
    sub.add_parser("remove", parents=[common], help="remove a gateway account").add_argument(
        "target", help="account id, short id or email"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
