"""Every error the service returns is JSON: ``{"error": {"code", "message", "details"}}``.

Views raise :class:`APIError` (or let a werkzeug HTTP error through); nothing else
reaches a client as HTML or as a traceback.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    """A refusal with an HTTP status, a message that explains itself, and details."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None, **details):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if status is not None:
            self.status = status


class NotFound(APIError):
    status = 404


class Conflict(APIError):
    status = 409


class Forbidden(APIError):
    status = 403


class Unavailable(APIError):
    status = 503


def error_body(status: int, message: str, details: dict | None = None):
    response = jsonify({"error": {"code": status, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def validation_details(exc: ValidationError) -> dict:
    return {"fields": [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                       for e in exc.errors(include_input=False, include_url=False)]}


def install(app: Flask):
    @app.errorhandler(APIError)
    def api_error(exc: APIError):
        response = error_body(exc.status, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError):
        details = validation_details(exc)
        fields = ", ".join(f"{f['field']}: {f['problem']}" for f in details["fields"])
        return error_body(400, f"invalid request: {fields}", details)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_body(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_body(500, "internal error; the service log has the details")
