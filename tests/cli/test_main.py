"""The `codex-gateway` command: dispatch, what `run` hands mitmproxy, and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from codex_gateway import __version__
from codex_gateway.cli import main
from codex_gateway.cli.run import SCRIPT
from codex_gateway.cli.run import mitmproxy_args

DEFAULT = ["--mode", "reverse:https://chatgpt.com@127.0.0.1:8787"]


@pytest.mark.parametrize(
    ("argv", "web", "args"),
    [
        ([], False, ["-s", str(SCRIPT), *DEFAULT, "--set", "connection_strategy=lazy"]),
        (["--web"], True, ["-s", str(SCRIPT), *DEFAULT, "--set", "connection_strategy=lazy"]),
        (
            ["--set", "gateway_api_key=k"],
            False,
            ["-s", str(SCRIPT), *DEFAULT, "--set", "connection_strategy=lazy", "--set", "gateway_api_key=k"],
        ),
        (
            ["--mode", "reverse:http://x@9000"],
            False,
            ["-s", str(SCRIPT), "--set", "connection_strategy=lazy", "--mode", "reverse:http://x@9000"],
        ),
        (
            ["-m", "reverse:http://x"],
            False,
            ["-s", str(SCRIPT), "--set", "connection_strategy=lazy", "-m", "reverse:http://x"],
        ),
        (
            ["--mode=reverse:http://x"],
            False,
            ["-s", str(SCRIPT), "--set", "connection_strategy=lazy", "--mode=reverse:http://x"],
        ),
        (["--", "--version"], False, ["-s", str(SCRIPT), *DEFAULT, "--set", "connection_strategy=lazy", "--version"]),
    ],
)
def test_run_hands_mitmproxy_the_package_s_script(argv: list[str], web: bool, args: list[str]) -> None:
    assert mitmproxy_args(argv) == (web, args)


def test_the_script_is_inside_the_package_next_to_nothing_it_could_shadow() -> None:
    assert SCRIPT.is_file() and SCRIPT.parent.parent.name == "codex_gateway"
    assert sorted(p.name for p in SCRIPT.parent.glob("*.py")) == ["__init__.py", "gateway.py"]


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "codex-gateway run" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"codex-gateway {__version__}"
    assert main([]) == 2  # no command: the help, and a failing status


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["bogus"], "codex-gateway: error: unknown command 'bogus'; use one of run, accounts, replay, openclaw-config"),
        (
            ["replay", "/nonexistent/capture.mitm"],
            "codex-gateway replay: error: no such capture: /nonexistent/capture.mitm",
        ),
        (["replay"], "codex-gateway replay: error: the following arguments are required: captures"),
        (["doctor", "--proxy", "socks5://127.0.0.1:1080"], "codex-gateway doctor: error: codex_proxy is a SOCKS proxy"),
        (["doctor", "--timeout", "0"], "codex-gateway doctor: error: --timeout must be positive"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith(complaint)


def test_replay_of_a_capture_without_chat_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.flows"
    empty.write_bytes(b"")
    assert main(["replay", str(empty)]) == 2
    assert capsys.readouterr().err == "codex-gateway replay: error: no chat requests in the capture\n"
