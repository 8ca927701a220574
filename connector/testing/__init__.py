"""The test kit: Plain event builders, fake CRM and Plain servers, the adapter conformance suite.

It needs the ``testing`` extra; the service itself never imports it.
"""

from __future__ import annotations

import importlib.util

#: what the ``testing`` extra installs, as (module, distribution)
_NEEDS = (("pytest", "pytest"), ("graphql", "graphql-core"))

# Checked up front, like starlette.testclient without httpx, so the error names the fix
# rather than whichever module of the kit happened to be imported first.
_missing = [dist for module, dist in _NEEDS if importlib.util.find_spec(module) is None]
if _missing:
    raise ImportError(
        f"connector.testing needs the 'testing' extra ({', '.join(_missing)} missing): "
        "pip install 'plain-crm-sync[testing]'"
    )
