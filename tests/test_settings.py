import os
import re
from pathlib import Path

import pytest

from app.core.settings import ENV_PREFIX, Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


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


def test_every_setting_is_in_the_readme_table() -> None:
    section = README.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = set(re.findall(rf"`({ENV_PREFIX}[A-Z_]+)`", "\n".join(rows)))
    assert documented == {ENV_PREFIX + name.upper() for name in Settings.model_fields}
