"""Errors of the staff domain."""

from __future__ import annotations

from distnet.kit.errors import Conflict, NotFound


class StaffNotFound(NotFound):
    code = "staff-not-found"
    title = "No such staff member"


class StaffNameTaken(Conflict):
    code = "staff-name-taken"
    title = "A staff member with this name exists"
