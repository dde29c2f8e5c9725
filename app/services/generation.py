"""generateTrader: one sentence to a complete trader preview; nothing is saved.

With a model: the sentence goes to Gemini with the filter language and the risk ranges;
the answer must be a trader that passes everything a saved one must (the trader rules,
which include the filter's static validation; risk values out of range are refused, never
clamped) and whose filter runs on current candles (a dry run in the sandbox, when the
engine runs in this process). Whatever fails goes back to the model once, as a repair
request; still failing is a `GenerationFailedError` with every problem, and nothing is
saved. A model that cannot answer (no key, a spent budget, an outage, a refusal) leaves
the offline path, which says why it was taken.

Offline: the closest template, adapted to what the sentence states
(`app.domain.trader_templates.adapt`), checked the same way.

A preview is saved (possibly edited) by `createTraderFromGeneration`, through
`TraderManager.create` like any new trader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.decision import AnalysisEngineKind
from app.domain.indicators import INDICATORS
from app.domain.llm import Purpose
from app.domain.sentence import read_sentence
from app.domain.trader_rules import validate_trader_fields
from app.domain.trader_spec import RiskSettings
from app.domain.trader_templates import ChartIndicator, TraderDraft, adapt
from app.engine.llm.client import (
    InvalidAnswerError,
    LlmAnswer,
    LlmClient,
    LlmError,
    LlmRequest,
    OfflineError,
    schema_parser,
)
from app.services.filter_check import FilterCheck, FilterChecker, validate_filter
from app.services.generation_prompt import (
    SCHEMA_VERSION,
    GeneratedAnswer,
    generation_prompt,
    generation_system,
)

TEMPLATE_ENGINE = "template"
MAX_DESCRIPTION = 2000
PARSE = schema_parser(GeneratedAnswer)


class GenerationFailedError(ValueError):
    """No valid trader came of the description; `problems` says what was wrong."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(f"{message}: {'; '.join(problems)}")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Generation:
    """A preview: the draft, who made it (gemini, cached or template) and how."""

    draft: TraderDraft
    engine: str
    check: FilterCheck
    model: str | None = None
    template: str | None = None
    changes: tuple[str, ...] = ()
    repairs: int = 0
    fallback_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class _Spent:
    input_tokens: int = 0
    output_tokens: int = 0
    repairs: int = 0
    cached: list[bool] = field(default_factory=list)

    def answer(self, answer: LlmAnswer[GeneratedAnswer]) -> None:
        self.input_tokens += answer.input_tokens
        self.output_tokens += answer.output_tokens
        self.cached.append(answer.cached)

    def error(self, error: LlmError) -> None:
        self.input_tokens += error.input_tokens
        self.output_tokens += error.output_tokens
        self.cached.append(False)


def _chart_problems(indicators: tuple[ChartIndicator, ...]) -> list[str]:
    problems = []
    for index, indicator in enumerate(indicators):
        spec = INDICATORS.get(indicator.name)
        if spec is None:
            problems.append(f"indicators[{index}]: unknown indicator {indicator.name!r}")
            continue
        try:
            spec.bind(indicator.params)
        except ValueError as exc:
            problems.append(f"indicators[{index}]: {exc}")
    return problems


def _decimal(value: float) -> Decimal:
    """A number of the answer as written: 150, not 150.0; 2.5, not binary noise."""
    return Decimal(int(value)) if value.is_integer() else Decimal(repr(value))


def draft_of(answer: GeneratedAnswer) -> TraderDraft:
    risk = answer.risk
    return TraderDraft(
        name=answer.suggested_name.strip(),
        description=answer.description,
        interval=answer.interval,
        symbols=tuple(answer.symbols),
        filter_code=answer.filter_code,
        filter_description=tuple(answer.filter_description),
        strategy_instructions=answer.strategy_instructions,
        indicators=tuple(
            ChartIndicator(i.name, {p.name: p.value for p in i.params}) for i in answer.indicators
        ),
        risk=RiskSettings(
            stop_loss=_decimal(risk.stop_loss),
            take_profit=_decimal(risk.take_profit),
            max_positions=risk.max_positions,
            position_size_percent=_decimal(risk.position_size_percent),
            max_drawdown=_decimal(risk.max_drawdown),
            min_risk_reward=_decimal(risk.min_risk_reward),
        ),
    )


class TraderGenerator:
    def __init__(
        self, llm: LlmClient | None, model: str, checker: FilterChecker | None = None
    ) -> None:
        self.llm = llm
        self.model = model
        self.checker = checker

    async def check(self, draft: TraderDraft, owner_id: int) -> tuple[list[str], FilterCheck]:
        """Every reason the draft cannot be saved and run, and its dry run (as its owner's,
        under the one-check-at-a-time rule of `validateFilter`)."""
        problems = [str(error) for error in validate_trader_fields(draft.trader_fields())]
        problems += _chart_problems(draft.indicators)
        check = await validate_filter(
            draft.filter_code,
            list(draft.symbols) or None,
            interval=draft.interval,
            checker=self.checker,
            user_id=owner_id,
        )
        if check.ran:
            problems += [f"filter dry run: {error}" for error in check.errors]
        return problems, check

    async def generate(self, owner_id: int, description: str) -> Generation:
        text = description.strip()
        if not text:
            raise GenerationFailedError("no trader to generate", ["the description is empty"])
        if len(text) > MAX_DESCRIPTION:
            raise GenerationFailedError(
                "no trader to generate", [f"the description is over {MAX_DESCRIPTION} characters"]
            )
        if self.llm is None:
            return await self.from_template(owner_id, text, None)
        request = LlmRequest(
            purpose=Purpose.GENERATION,
            owner_id=owner_id,
            model=self.model,
            system=generation_system(),
            prompt=generation_prompt(text),
            schema=GeneratedAnswer,
            schema_version=SCHEMA_VERSION,
            temperature=0.4,
        )
        spent = _Spent()
        try:
            answer = await self.llm.generate(request, PARSE)
        except OfflineError as exc:
            return await self.from_template(owner_id, text, str(exc))
        except InvalidAnswerError as exc:
            spent.error(exc)
            return await self._repair(request, exc.text, [str(exc)], spent)
        except LlmError as exc:
            return await self.from_template(owner_id, text, f"the model did not answer: {exc}")
        spent.answer(answer)
        draft = draft_of(answer.value)
        problems, check = await self.check(draft, owner_id)
        if not problems:
            return self._generation(draft, check, spent)
        return await self._repair(request, answer.text, problems, spent)

    async def _repair(
        self, request: LlmRequest, text: str, problems: list[str], spent: _Spent
    ) -> Generation:
        assert self.llm is not None
        spent.repairs = 1
        try:
            answer = await self.llm.generate(request.repair(text, "; ".join(problems)), PARSE)
        except LlmError as exc:
            raise GenerationFailedError(
                "the generated trader is invalid and the repair failed", [*problems, str(exc)]
            ) from None
        spent.answer(answer)
        draft = draft_of(answer.value)
        still, check = await self.check(draft, request.owner_id)
        if still:
            raise GenerationFailedError(
                "the generated trader is still invalid after one repair", still
            )
        return self._generation(draft, check, spent)

    def _generation(self, draft: TraderDraft, check: FilterCheck, spent: _Spent) -> Generation:
        cached = bool(spent.cached) and all(spent.cached)
        return Generation(
            draft=draft,
            engine=(AnalysisEngineKind.CACHED if cached else AnalysisEngineKind.GEMINI).value,
            check=check,
            model=self.model,
            repairs=spent.repairs,
            input_tokens=spent.input_tokens,
            output_tokens=spent.output_tokens,
        )

    async def from_template(
        self, owner_id: int, description: str, fallback_reason: str | None
    ) -> Generation:
        adapted = adapt(description, read_sentence(description))
        problems, check = await self.check(adapted.draft, owner_id)
        if problems:
            raise GenerationFailedError(
                "the description asks for values a trader cannot have", problems
            )
        return Generation(
            draft=adapted.draft,
            engine=TEMPLATE_ENGINE,
            check=check,
            template=adapted.template.key,
            changes=adapted.changes,
            fallback_reason=fallback_reason,
        )
