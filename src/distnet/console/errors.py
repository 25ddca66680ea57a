"""Errors of the console's sign-in."""

from __future__ import annotations

from distnet.kit.errors import DistnetError, Forbidden, Unauthorized


class SignInRequired(Unauthorized):
    """No (or an expired) console session: browsers are sent to the login page."""

    code = "console-sign-in-required"
    title = "Please sign in"


class SignInRefused(Unauthorized):
    code = "console-sign-in-refused"
    title = "Sign-in refused"


class SignInThrottled(DistnetError):
    status = 429
    code = "console-sign-in-throttled"
    title = "Too many failed sign-in attempts"


class CsrfTokenMissing(Forbidden):
    code = "csrf-token-missing"
    title = "The form's security token is missing or wrong"
