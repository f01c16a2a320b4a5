"""Reading a request: JSON bodies into strict models, query flags and numbers.

Every refusal is a 400 naming what was wrong: a body that is not JSON, not an object, or
with a field the model does not know.
"""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel

from .errors import APIError

Model = TypeVar("Model", bound=BaseModel)

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


def body(model: type[Model]) -> Model:
    """The request's JSON body as ``model`` (an empty body is an empty object)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        data = {}
    else:
        data = request.get_json(silent=True)
        if data is None:
            raise APIError("the request body is not valid JSON")
    if not isinstance(data, dict):
        raise APIError("the request body must be a JSON object")
    return model.model_validate(data)


def flag(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return False
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise APIError(f"{name} must be true or false, not {raw!r}", field=name)


def bounded_int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise APIError(f"{name} must be an integer from {low} to {high}", field=name)
    return int(raw)
