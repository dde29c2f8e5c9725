"""Which analysis engine the live engine runs is the operator's choice: `filter` (no
analysis, every signal entered) even with a model key, which then only generates traders."""

from __future__ import annotations

from pydantic import SecretStr

from app.bootstrap import analysis_engine
from app.core.settings import Settings
from app.engine.analysis.filter_only import FilterOnlyEngine
from app.engine.analysis.rules import RuleAnalysisEngine


def test_filter_is_chosen_with_or_without_a_key() -> None:
    without = Settings(analysis_engine="filter")
    with_key = Settings(analysis_engine="filter", gemini_api_key=SecretStr("key"))

    assert isinstance(analysis_engine(without, None), FilterOnlyEngine)
    assert with_key.uses_gemini, "the key still generates traders"
    assert not without.uses_gemini
    assert isinstance(analysis_engine(Settings(analysis_engine="rules"), None), RuleAnalysisEngine)
