"""Who a user is to the business (kept apart from the tables, so the command line can name roles
without loading the database layer)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OWNER = "owner"
    HEAD = "head"
    MANAGER = "manager"
    VIEWER = "viewer"
