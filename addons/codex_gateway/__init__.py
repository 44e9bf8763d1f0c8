"""codex-gateway: OpenAI-compatible clients on a ChatGPT/Codex login, as a mitmproxy addon."""

__version__ = "0.1.0"
