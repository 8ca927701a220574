"""The page frame and the small helpers every page uses. Everything shown goes through
:func:`esc`; text from CRMs and Plain also through :func:`answer` (emails masked)."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence

from connector.redact import mask_emails_in
from connector.status_view import when as text_when

_CSS = """
*{box-sizing:border-box}body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b1f24;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
header a{color:#fff}header h1{font-size:1.1rem;margin:0}main{padding:1rem;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.8rem;margin:0 0 1rem}
h2{font-size:1rem;margin:0 0 .6rem}.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #eceef1;vertical-align:top}th{background:#f0f2f5;white-space:nowrap}
.ok{color:#116329}.warn{color:#9a6700}.bad{color:#cf222e}.muted{color:#57606a}
code,.mono{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}
form.inline{display:inline}button{font:inherit;padding:.2rem .6rem;border-radius:4px;border:1px solid #8c959f;
background:#fff;cursor:pointer}button.danger{border-color:#cf222e;color:#cf222e}
input[type=search]{font:inherit;padding:.3rem;min-width:16rem;max-width:100%}
.notice{background:#ddf4ff;border:1px solid #54aeff;padding:.5rem;border-radius:6px;margin-bottom:1rem}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def answer(text: str | None) -> str:
    """A CRM's or Plain's words, escaped, with the addresses they quote masked."""
    return esc(mask_emails_in(text or ""))


def when(epoch: float | None) -> str:
    if not epoch:
        return "never"
    stamp = text_when(epoch)  # the CLI's format, so page and terminal read alike
    return f'<time datetime="{esc(stamp)}">{esc(stamp)}</time> <span class="muted">({esc(ago(epoch))})</span>'


def ago(epoch: float) -> str:
    return duration(max(0.0, time.time() - epoch)) + " ago"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def table(headers: Sequence[str], rows: Iterable[str], empty: str, table_id: str = "") -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def cells(*values: str) -> str:
    """A table row of already escaped cell HTML."""
    return "<tr>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"


def section(title: str, body: str, section_id: str) -> str:
    return f'<section id="{esc(section_id)}"><h2>{esc(title)}</h2>{body}</section>'


def search_form(query: str = "") -> str:
    return (
        '<form method="get" action="/status/customers" role="search">'
        f'<input type="search" name="q" value="{esc(query)}" placeholder="Plain id, email or external id"'
        ' aria-label="customer"> <button type="submit">Find customer</button></form>'
    )


def page(title: str, body: str, notice: str | None = None) -> str:
    note = f'<p class="notice" role="status">{esc(notice)}</p>' if notice else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)} · plain-crm-sync</title><style>{_CSS}</style></head><body>"
        '<header><h1>plain-crm-sync</h1><a href="/status">Status</a><a href="/status/customers">Customers</a>'
        f"{search_form()}</header><main>{note}{body}</main></body></html>"
    )
