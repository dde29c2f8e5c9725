"""schema.graphql is what the code serves; regenerate it with `traders schema > schema.graphql`."""

from pathlib import Path

from app.api.schema import build_schema
from app.core.settings import Settings

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_schema_file_matches_the_code() -> None:
    served = build_schema(Settings()).as_str().strip()
    assert SCHEMA_FILE.read_text().strip() == served, (
        "schema.graphql is out of date: run `traders schema > schema.graphql`"
    )
