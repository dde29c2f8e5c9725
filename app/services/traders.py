"""TraderManager: create, change and remove a user's traders, then tell subscribers.

Every method is scoped to the owner: another user's trader is "not found". Changes are
validated before anything is written, and events are published only after the
transaction has committed, so no subscriber ever hears of a change that did not happen.

A user owns at most `max_traders_per_user` traders. The count and the insert share one
transaction, and concurrent creations for one owner cannot both pass it: on PostgreSQL the
transaction first locks the owner's row (`SELECT ... FOR UPDATE`), so creations for one user
queue up across every API process and each counts the traders committed before it; on SQLite
Tortoise runs one transaction at a time per process, and the database lets one writer commit
at a time (a second process's racing write fails with "database is locked" instead of passing
the cap).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.core.events import Event, EventBus, EventType
from app.db.models import Trader, User
from app.domain.enums import TraderStatus, TradingMode
from app.domain.trader_rules import FieldError, normalize_trader_fields, validate_trader_fields
from app.services.errors import InvalidInputError, NotFoundError


def parse_id(value: str | uuid.UUID, kind: str) -> uuid.UUID:
    """An id from the outside; a malformed one is simply "not found"."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(kind) from None


def status_event(trader: Trader, kind: str = "updated") -> Event:
    return Event(
        type=EventType.TRADER_STATUS,
        owner_id=trader.owner_id,
        trader_id=str(trader.id),
        payload={
            "kind": kind,
            "status": trader.status.value,
            "reason": trader.status_reason,
            "enabled": trader.enabled,
            "mode": trader.mode.value,
        },
    )


class TraderManager:
    def __init__(self, bus: EventBus, max_traders_per_user: int | None = None) -> None:
        """`max_traders_per_user`: None for no cap (the engine, which creates no traders)."""
        self.bus = bus
        self.max_traders_per_user = max_traders_per_user

    async def get(self, owner: User, trader_id: str | uuid.UUID) -> Trader:
        trader = await Trader.get_or_none(id=parse_id(trader_id, "trader"), owner_id=owner.id)
        if trader is None:
            raise NotFoundError("trader")
        return trader

    async def create(self, owner: User, fields: Mapping[str, Any]) -> Trader:
        errors = validate_trader_fields(fields)
        if "name" not in fields:
            errors.append(FieldError("name", "is required"))
        errors += self._mode_errors(fields.get("mode"), credential=None)
        if errors:
            raise InvalidInputError(errors)
        columns = normalize_trader_fields(fields)
        columns["status"] = TraderStatus.RUNNING if fields.get("enabled") else TraderStatus.PAUSED
        async with in_transaction() as connection:
            await self._check_room(owner, connection)
            trader = await Trader.create(owner=owner, using_db=connection, **columns)
        await self.bus.publish(status_event(trader, "created"))
        return trader

    async def _check_room(self, owner: User, connection: BaseDBAsyncClient) -> None:
        limit = self.max_traders_per_user
        if limit is None:
            return
        await User.filter(id=owner.id).select_for_update().only("id").using_db(connection)
        if await Trader.filter(owner_id=owner.id).using_db(connection).count() >= limit:
            message = f"a user may have at most {limit} traders: delete one to create another"
            raise InvalidInputError([FieldError("input", message)])

    async def update(self, owner: User, trader_id: str, fields: Mapping[str, Any]) -> Trader:
        trader = await self.get(owner, trader_id)
        errors = validate_trader_fields(fields)
        if "mode" in fields:
            errors += self._mode_errors(fields["mode"], credential=trader.credential_id)
        if errors:
            raise InvalidInputError(errors)
        columns = normalize_trader_fields(fields)
        for column, value in columns.items():
            setattr(trader, column, value)
        changed = list(columns)
        if "enabled" in fields:
            self._apply_enabled(trader, bool(fields["enabled"]))
            changed += ["status", "status_reason"]
        # Only the columns asked for: a full save would write back a status that the engine
        # changed since the trader was read.
        await self._save(trader, [*changed, "updated_at"])
        await self.bus.publish(status_event(trader))
        return trader

    async def set_enabled(self, owner: User, trader_id: str, enabled: bool) -> Trader:
        trader = await self.get(owner, trader_id)
        self._apply_enabled(trader, enabled)
        await self._save(trader, ["enabled", "status", "status_reason", "updated_at"])
        await self.bus.publish(status_event(trader))
        return trader

    async def set_mode(self, owner: User, trader_id: str, mode: TradingMode) -> Trader:
        return await self.update(owner, trader_id, {"mode": mode})

    async def delete(self, owner: User, trader_id: str, confirm: bool) -> uuid.UUID:
        trader = await self.get(owner, trader_id)
        if not confirm:
            raise InvalidInputError([FieldError("confirm", "must be true to delete a trader")])
        trader.enabled = False
        trader.status = TraderStatus.PAUSED
        trader.status_reason = "deleted"
        await trader.delete()
        await self.bus.publish(status_event(trader, "deleted"))
        return trader.id

    async def set_error(self, trader_id: uuid.UUID, reason: str) -> None:
        """Stop a failing trader alone; the engine keeps running the others. A trader deleted
        meanwhile stays deleted, and no event follows."""
        await self._stop(trader_id, TraderStatus.ERROR, reason)

    async def pause(self, trader_id: uuid.UUID, reason: str) -> None:
        """Disable a trader whose own rules stop it (its max drawdown, an emergency stop)."""
        await self._stop(trader_id, TraderStatus.PAUSED, reason, enabled=False)

    async def _stop(
        self, trader_id: uuid.UUID, status: TraderStatus, reason: str, **more: bool
    ) -> None:
        changed = await Trader.filter(id=trader_id).update(
            status=status, status_reason=reason, **more
        )
        trader = await Trader.get_or_none(id=trader_id) if changed else None
        if trader is not None:
            await self.bus.publish(status_event(trader))

    @staticmethod
    async def _save(trader: Trader, fields: list[str] | None = None) -> None:
        """A trader deleted since it was read is "not found", and no event may follow."""
        try:
            await trader.save(update_fields=fields, force_update=True)
        except IntegrityError:
            raise NotFoundError("trader") from None

    @staticmethod
    def _apply_enabled(trader: Trader, enabled: bool) -> None:
        trader.enabled = enabled
        trader.status = TraderStatus.RUNNING if enabled else TraderStatus.PAUSED
        trader.status_reason = None

    @staticmethod
    def _mode_errors(mode: object, credential: object) -> list[FieldError]:
        if mode == TradingMode.LIVE and credential is None:
            return [FieldError("mode", "live mode needs exchange credentials on the trader")]
        return []
