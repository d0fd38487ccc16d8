"""voronka: a sales funnel a small business can read, and a light CRM to keep it.

The library's front door: the functions and types a program needs, importable from ``voronka``
itself (``from voronka import open_database, run_funnel, FunnelQuery``). Each is loaded when first
asked for, so ``import voronka`` stays as quick as the command line's start-up needs; the modules
named here are where each one lives and is documented.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

PUBLIC = {
    # the store
    "open_database": "voronka.db",
    "session_scope": "voronka.db",
    "default_account": "voronka.crm.accounts",
    "find_pipeline": "voronka.crm.accounts",
    "create_pipeline": "voronka.crm.accounts",
    # the CRM's writes
    "create_deal": "voronka.crm.deals",
    "NewDeal": "voronka.crm.new_deal",
    "move_deal": "voronka.crm.deals",
    "win_deal": "voronka.crm.deals",
    "lose_deal": "voronka.crm.deals",
    "reopen_deal": "voronka.crm.deals",
    "log_call": "voronka.crm.deals",
    "recount": "voronka.crm.pipelines",
    # files
    "import_file": "voronka.ingest.importers",
    "ImportTarget": "voronka.ingest.importers",
    # the reports
    "FunnelQuery": "voronka.analysis.funnel.query",
    "run_funnel": "voronka.analysis.funnel.report",
    "FunnelReport": "voronka.analysis.funnel.report",
    "StatsQuery": "voronka.analysis.stats.report",
    "run_stats": "voronka.analysis.stats.report",
    "StatsReport": "voronka.analysis.stats.report",
    "run_diagnosis": "voronka.analysis.diagnose",
    "run_forecast": "voronka.analysis.forecast",
    "run_audit": "voronka.analysis.audit",
    # errors
    "VoronkaError": "voronka.errors",
}
"""Public name → the module that defines it."""

__all__ = [
    "FunnelQuery",
    "FunnelReport",
    "ImportTarget",
    "NewDeal",
    "StatsQuery",
    "StatsReport",
    "VoronkaError",
    "create_deal",
    "create_pipeline",
    "default_account",
    "find_pipeline",
    "import_file",
    "log_call",
    "lose_deal",
    "move_deal",
    "open_database",
    "recount",
    "reopen_deal",
    "run_audit",
    "run_diagnosis",
    "run_forecast",
    "run_funnel",
    "run_stats",
    "session_scope",
    "win_deal",
]
"""The same names as ``PUBLIC``, listed for tools (a test holds the two equal)."""


def __getattr__(name: str) -> Any:
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'voronka' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked once: later lookups find it here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *PUBLIC})


if TYPE_CHECKING:  # what type checkers and editors see; nothing of it is imported at run time
    from voronka.analysis.audit import run_audit
    from voronka.analysis.diagnose import run_diagnosis
    from voronka.analysis.forecast import run_forecast
    from voronka.analysis.funnel.query import FunnelQuery
    from voronka.analysis.funnel.report import FunnelReport, run_funnel
    from voronka.analysis.stats.report import StatsQuery, StatsReport, run_stats
    from voronka.crm.accounts import create_pipeline, default_account, find_pipeline
    from voronka.crm.deals import create_deal, log_call, lose_deal, move_deal, reopen_deal, win_deal
    from voronka.crm.new_deal import NewDeal
    from voronka.crm.pipelines import recount
    from voronka.db import open_database, session_scope
    from voronka.errors import VoronkaError
    from voronka.ingest.importers import ImportTarget, import_file
