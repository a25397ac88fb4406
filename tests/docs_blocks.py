"""The shell examples of README.md and docs/, read the way a newcomer reads them: fenced
`bash` blocks (a `<!-- runnable: NAME -->` line right above one marks it as executed by
the docs tests), and every `tradewind ...` command line in them or in inline code."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md")))

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_MARK = re.compile(r"<!--\s*runnable:\s*([\w-]+)\s*-->\s*$")
_INLINE = re.compile(r"`((?:\.venv/bin/)?tradewind [^`]+)`")
# Placeholders and alternatives in prose, not commands as written.
_NOT_A_COMMAND = re.compile(r"\||\.\.\.|…|\[|<[A-Z_a-z]+>|[A-Z]{3,}_[A-Z]|\bN\b")


@dataclass(frozen=True)
class Block:
    """One fenced shell block: its file, line, marker name (None: not runnable), text."""

    path: Path
    line: int
    name: str | None
    text: str

    def commands(self) -> list[str]:
        """The block's command lines: continuations joined, comments dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        lines = []
        for raw in joined.splitlines():
            line = raw.split(" #")[0].strip() if not raw.lstrip().startswith("#") else ""
            if line:
                lines.append(line)
        return lines


def shell_blocks(paths: tuple[Path, ...] = DOCUMENTS) -> list[Block]:
    """Every `bash`/`sh` (or unlabelled) fenced block of the documents."""
    blocks = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            language, body = match.group(1), match.group(2)
            if language not in ("bash", "sh", "shell", ""):
                continue
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _MARK.search(before)
            blocks.append(Block(path, line, marker.group(1) if marker else None, body))
    return blocks


def runnable(name: str) -> Block:
    """The block marked `<!-- runnable: NAME -->` (exactly one must exist)."""
    found = [block for block in shell_blocks() if block.name == name]
    if len(found) != 1:
        raise LookupError(f"{len(found)} blocks marked runnable: {name}")
    return found[0]


def tradewind_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `tradewind`) of every documented `tradewind` command as written:
    each command line of the shell blocks (after any `VAR=value` prefix, up to a `&`, `|`
    or `;`) and each inline `tradewind ...` code span without placeholders."""
    found: list[tuple[str, list[str]]] = []
    for block in shell_blocks():
        for line in block.commands():
            if "tradewind" not in line.split("|")[0].split("#")[0]:
                continue
            words = shlex.split(line.replace("&", " & "), comments=True)
            while words and re.fullmatch(r"[A-Za-z_]+=.*", words[0]):
                words = words[1:]
            if not words or Path(words[0]).name != "tradewind":
                continue
            argv = []
            for word in words[1:]:
                if word in ("&", "|", ";", "&&", "...", "…"):  # the end, or a placeholder
                    break
                argv.append(word)
            found.append((f"{block.path.name}:{block.line}", argv))
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in _INLINE.finditer(text):
            command = match.group(1)
            if _NOT_A_COMMAND.search(command):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.name}:{line}", shlex.split(command)[1:]))
    return found


def on_ports(text: str, ports: dict[int, int]) -> str:
    """The text with each documented port moved to a test's free port (`:3000`, `--port
    3000`), so a docs test never collides with a service someone else runs."""
    for documented, free in ports.items():
        text = re.sub(rf"(:|--port\s+){documented}\b", rf"\g<1>{free}", text)
    return text


def shell_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment a reader's shell has: this interpreter's `tradewind` first on the
    PATH, no Tradewind or Alpaca settings of the machine, plus `extra`."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEWIND_", "ALPACA_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def run_block(
    block: Block, *, cwd: Path, ports: dict[int, int], env: dict[str, str], timeout: float
) -> str:
    """Run a block as written (on the given ports) with bash, failing on the first
    command that fails; its stdout."""
    import subprocess

    script = on_ports(block.text, ports)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=shell_env(env), capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{block.path.name}:{block.line}\n{done.stdout}\n{done.stderr}"
    return done.stdout
