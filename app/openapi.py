"""Print the OpenAPI document of the app (`make openapi` writes openapi/openapi.json)."""

from __future__ import annotations

import json

from app.config import Settings
from app.main import create_app


def openapi_json() -> str:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(openapi_json(), end="")
