"""`backfill`'s progress: a rich bar on a real terminal (a pseudo-terminal here), plain lines otherwise."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from tests.sync.conftest import KEY, cli, members, setup

# CSI sequences (colour, cursor moves, line erases) and the OSC/charset ones rich may send
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]")


def _workspace(fake: Any, tmp_path: Path, api_url: str) -> Path:
    alpha, zeta = fake.data.add_group("alpha"), fake.data.add_group("zeta")
    for i in range(120):  # alpha needs two pages of 100
        fake.data.add_customer(f"A {i}", f"a{i}@example.com", groups=[alpha])
    for i in range(7):
        fake.data.add_customer(f"Z {i}", f"z{i}@example.com", groups=[zeta])
    mappings = [{"group": g, "to": [{"target": "audit"}]} for g in ("alpha", "zeta")]
    return setup(tmp_path, api_url, mappings=mappings)


def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Everything written to the terminal until the child exits and the slave side is closed."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every slave descriptor is closed, the child is gone
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    return bytes(out)


def _on_terminal(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a 120x40 pseudo-terminal, as an operator's shell does."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "CI")}
    env.update(TERM="xterm-256color", PLAIN_API_KEY=KEY)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
            env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        slave = -1
        raw = _read_all(master, proc, timeout)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return proc.returncode, _ANSI.sub("", raw.decode("utf-8", "replace"))


def test_a_terminal_gets_the_rich_bar_with_groups_pages_customers_and_changes(tmp_path, fake, api_url):
    config = _workspace(fake, tmp_path, api_url)
    zeta = fake.data.group_id("zeta")

    def hold(field: str, args: dict[str, Any]) -> None:
        # long enough for several of the bar's 10 refreshes a second to show alpha's finished state
        if field == "customers" and args["filters"]["customerGroupIds"] == [zeta]:
            time.sleep(0.6)

    fake.on_read = hold
    status, screen = _on_terminal("backfill", "--config", str(config))
    assert status == 0, screen
    # live while reading: alpha done, zeta not yet; then the last state, with the totals of every page
    assert re.search(r"backfill alpha [━╺]+ 1/2 2 pages, 120 customers, 120 changes 0:00:0\d", screen), screen
    assert re.search(r"backfill zeta ━+ 2/2 3 pages, 127 customers, 127 changes 0:00:0\d", screen), screen
    assert "backfill: " not in screen  # no plain line: those are for logs, not terminals
    assert "backfill done: 2 group(s), 3 page(s), 127 customer(s), 127 change(s), 127 operation(s) queued" in screen
    assert len(members(config, fake.data.group_id("alpha"))) == 120


def test_a_pipe_gets_one_plain_line_per_page_and_no_bar(tmp_path, fake, api_url):
    config = _workspace(fake, tmp_path, api_url)
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "backfill: 2 group(s) to read",
        "backfill: alpha: 0/2 group(s) done, 1 page(s), 100 customer(s), 100 change(s)",
        "backfill: alpha: 0/2 group(s) done, 2 page(s), 120 customer(s), 120 change(s)",
        "backfill: alpha: 1/2 group(s) done, 2 page(s), 120 customer(s), 120 change(s)",
        "backfill: zeta: 1/2 group(s) done, 3 page(s), 127 customer(s), 127 change(s)",
        "backfill: zeta: 2/2 group(s) done, 3 page(s), 127 customer(s), 127 change(s)",
    ]
    assert "━" not in result.stderr and "\x1b[" not in result.stderr


def test_group_keys_and_notes_show_as_written_on_the_bar_not_as_rich_markup(tmp_path, fake, api_url):
    # Plain's group keys are free text: a closing tag rich cannot match once stopped the whole run
    odd = fake.data.add_group("vip[/b] [bold]x")
    ann = fake.data.add_customer("Ann", "ann@example.com", groups=[odd])
    mappings = [{"group": g, "to": [{"target": "audit"}]} for g in ("vip[/b] [bold]x", "gone[/i]")]
    config = setup(tmp_path, api_url, mappings=mappings)
    status, screen = _on_terminal("backfill", "--config", str(config))
    assert status == 0, screen
    assert "mapping names group 'gone[/i]', which Plain does not have: skipped" in screen
    assert re.search(r"backfill vip\[/b\] \[bold\]x ━+ 1/1 1 pages, 1 customers, 1 changes", screen), screen
    assert members(config, odd) == {ann}


def test_control_characters_in_plain_text_reach_a_terminal_as_escapes(tmp_path, fake, api_url):
    """A group key is Plain's free text: ESC or CR in it must not recolour or overwrite the screen."""
    hostile = "vip\x1b[8mhidden\rX"
    group = fake.data.add_group(hostile)
    fake.data.add_customer("Ann", "ann@example.com", groups=[group])
    config = setup(tmp_path, api_url, mappings=[{"group": group, "to": [{"target": "audit"}]}])
    status, screen = _on_terminal("backfill", "--config", str(config), "--dry-run")
    assert status == 0, screen
    assert "vip\\x1b[8mhidden\\x0dX" in screen  # the dry run's table, on stdout
    # and where stdout is not a terminal, the text is written as it is (a file gets the data)
    piped = cli("backfill", "--config", str(config), "--dry-run")
    assert "vip\x1b[8mhidden" in piped.stdout  # (CR read back as a newline by text mode)
