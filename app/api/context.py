"""The per-request context: who is calling, the process runtime, and request-scoped loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket

from app.api.errors import AuthenticationRequiredError
from app.api.loaders import Loaders
from app.db.models import User
from app.services.runtime import Runtime
from app.services.traders import TraderManager


@dataclass
class Context:
    request: Request | WebSocket
    runtime: Runtime
    user: User | None = None
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(default_factory=Loaders)

    @property
    def traders(self) -> TraderManager:
        return TraderManager(
            self.runtime.bus, max_traders_per_user=self.runtime.settings.max_traders_per_user
        )

    def require_user(self) -> User:
        if self.user is None:
            raise AuthenticationRequiredError
        return self.user
