"""mitmproxy entry script inside the installed package: `mitmdump -s <this file>` runs the codex-gateway addon.

`codex-gateway run` passes this file to mitmproxy's `-s`. It lives in a directory of its own because mitmproxy
puts a script's directory first on `sys.path` while loading it: next to the package's modules, a module named like
one of them (`http`, `inspect`, `models`, …) could be shadowed.
"""

from codex_gateway.addon import CodexGateway

addons = [CodexGateway()]
