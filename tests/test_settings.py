import os

import pytest

from app.core.settings import SettingsError, load_settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("TRADERS_")]:
        monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite://data/")
    assert settings.redis_url is None
    assert settings.feed == "auto"


def test_unknown_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADERS_REDIS_URI", "redis://x")
    with pytest.raises(SettingsError, match="TRADERS_REDIS_URI"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRADERS_PORT", "eighty"),
        ("TRADERS_DATABASE_URL", "mysql://x"),
        ("TRADERS_FEED", "ccxt"),
        ("TRADERS_REDIS_URL", "http://x"),
        ("TRADERS_LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_value_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()
