"""The test kit for adapter authors: Plain event builders, fake CRM servers, the conformance suite.

It needs the ``testing`` extra (pytest); the service itself never imports it.
"""

from __future__ import annotations

try:
    import pytest  # noqa: F401  (checked here so every part of the kit names the extra)
except ImportError as exc:  # like starlette.testclient without httpx: name the fix, not just the module
    raise ImportError("connector.testing needs the 'testing' extra: pip install 'plain-crm-sync[testing]'") from exc
