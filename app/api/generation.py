"""Traders from one sentence: `generateTrader` (a preview, not saved), `strategyTemplates`,
and `createTraderFromGeneration` (saves a preview, possibly edited).

A failed generation is the error code `GENERATION_FAILED` with every problem listed, and
nothing is saved. The preview says which engine made it (`gemini`, `cached`, `template`),
what the offline path changed in its template, and whether the dry run happened.
"""

from __future__ import annotations

import strawberry

from app.api.filter_check import FilterValidation
from app.api.inputs import GRAPHQL_PATHS, RiskManagementInput
from app.api.market import IndicatorInput, IndicatorParam
from app.api.types import Info, RiskManagement, Trader
from app.domain.trader_rules import FieldError
from app.domain.trader_spec import RISK_FIELDS, RiskSettings
from app.domain.trader_templates import TEMPLATES, ChartIndicator, StrategyTemplate, TraderDraft
from app.services.errors import InvalidInputError
from app.services.generation import Generation, TraderGenerator


@strawberry.type(name="ChartIndicator")
class ChartIndicatorType:
    name: str
    params: list[IndicatorParam]

    @classmethod
    def from_value(cls, indicator: ChartIndicator) -> ChartIndicatorType:
        return cls(
            name=indicator.name,
            params=[IndicatorParam(name=k, value=v) for k, v in indicator.params.items()],
        )


def _risk(risk: RiskSettings) -> RiskManagement:
    return RiskManagement(**{name: getattr(risk, name) for name in RISK_FIELDS})


@strawberry.type
class TemplateParameter:
    name: str
    label: str
    default: float
    minimum: float
    maximum: float


@strawberry.type(name="StrategyTemplate", description="A complete trader that needs no model")
class StrategyTemplateType:
    key: str
    name: str
    summary: str
    interval: str
    symbols: list[str]
    filter_code: str
    filter_description: list[str]
    strategy_instructions: str
    indicators: list[ChartIndicatorType]
    risk_parameters: RiskManagement
    parameters: list[TemplateParameter]

    @classmethod
    def from_value(cls, template: StrategyTemplate) -> StrategyTemplateType:
        draft = template.render()
        return cls(
            key=template.key,
            name=template.name,
            summary=template.summary,
            interval=draft.interval,
            symbols=list(draft.symbols),
            filter_code=draft.filter_code,
            filter_description=list(draft.filter_description),
            strategy_instructions=draft.strategy_instructions,
            indicators=[ChartIndicatorType.from_value(i) for i in draft.indicators],
            risk_parameters=_risk(draft.risk),
            parameters=[
                TemplateParameter(
                    name=p.name,
                    label=p.label,
                    default=p.default,
                    minimum=p.minimum,
                    maximum=p.maximum,
                )
                for p in template.params
            ],
        )


@strawberry.type(description="A generated trader, not saved: edit it, then save it")
class GeneratedTrader:
    suggested_name: str
    description: str
    filter_code: str
    filter_description: list[str]
    strategy_instructions: str
    indicators: list[ChartIndicatorType]
    risk_parameters: RiskManagement
    interval: str
    symbols: list[str] = strawberry.field(description="empty: the feed's default universe")
    engine: str = strawberry.field(description="gemini, cached (a recorded answer) or template")
    model: str | None
    template: str | None = strawberry.field(description="The template key, offline")
    adaptations: list[str] = strawberry.field(
        description="What the offline path read from the description and changed"
    )
    repairs: int = strawberry.field(description="Repair requests the model needed (0 or 1)")
    fallback_reason: str | None = strawberry.field(
        description="Why a template answered although a model is configured"
    )
    input_tokens: int
    output_tokens: int
    dry_run: FilterValidation = strawberry.field(
        description="The filter's check on current candles"
    )

    @classmethod
    def from_generation(cls, generation: Generation) -> GeneratedTrader:
        draft = generation.draft
        return cls(
            suggested_name=draft.name,
            description=draft.description,
            filter_code=draft.filter_code,
            filter_description=list(draft.filter_description),
            strategy_instructions=draft.strategy_instructions,
            indicators=[ChartIndicatorType.from_value(i) for i in draft.indicators],
            risk_parameters=_risk(draft.risk),
            interval=draft.interval,
            symbols=list(draft.symbols),
            engine=generation.engine,
            model=generation.model,
            template=generation.template,
            adaptations=list(generation.changes),
            repairs=generation.repairs,
            fallback_reason=generation.fallback_reason,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            dry_run=FilterValidation.from_check(generation.check),
        )


@strawberry.input(description="A generated trader as the user left it")
class GeneratedTraderInput:
    suggested_name: str
    description: str = ""
    filter_code: str
    filter_description: list[str] = strawberry.field(default_factory=list)
    strategy_instructions: str = ""
    indicators: list[IndicatorInput] = strawberry.field(default_factory=list)
    risk_parameters: RiskManagementInput | None = None
    interval: str
    symbols: list[str] = strawberry.field(default_factory=list)
    enabled: bool = False


# The input's GraphQL paths by trader field, for errors (risk fields keep the paths under
# riskParameters; the rest are this input's own fields).
GENERATED_PATHS: dict[str, str] = {
    "name": "suggestedName",
    "filter_code": "filterCode",
    "filter_description": "filterDescription",
    "filter_indicators": "indicators",
    "strategy_instructions": "strategyInstructions",
    **{
        name: GRAPHQL_PATHS[name].replace("strategy.riskManagement.", "riskParameters.")
        for name in RISK_FIELDS
    },
}


def draft_of(value: GeneratedTraderInput) -> TraderDraft:
    """The trader the input describes, unsaved."""
    risk = value.risk_parameters
    return TraderDraft(
        name=value.suggested_name,
        description=value.description,
        interval=value.interval,
        symbols=tuple(value.symbols),
        filter_code=value.filter_code,
        filter_description=tuple(value.filter_description),
        strategy_instructions=value.strategy_instructions,
        indicators=tuple(
            ChartIndicator(i.name, {p.name: p.value for p in i.params}) for i in value.indicators
        ),
        risk=RiskSettings(
            **{
                name: getattr(risk, name)
                for name in RISK_FIELDS
                if risk is not None and getattr(risk, name) is not strawberry.UNSET
            }
        ),
    )


def _fields(value: GeneratedTraderInput) -> dict[str, object]:
    return {**draft_of(value).trader_fields(), "enabled": value.enabled}


def generator(info: Info) -> TraderGenerator:
    runtime = info.context.runtime
    return TraderGenerator(
        runtime.llm, runtime.settings.gemini_generation_model, runtime.filter_checker
    )


@strawberry.type
class GenerationQuery:
    @strawberry.field(description="Complete traders that need no model, each with its filter")
    def strategy_templates(self, info: Info) -> list[StrategyTemplateType]:
        info.context.require_user()
        return [StrategyTemplateType.from_value(t) for t in TEMPLATES.values()]


@strawberry.type
class GenerationMutation:
    @strawberry.mutation(
        description="A complete trader from one sentence, checked and dry-run; not saved"
    )
    async def generate_trader(self, info: Info, description: str) -> GeneratedTrader:
        user = info.context.require_user()
        generation = await generator(info).generate(user.id, description)
        return GeneratedTrader.from_generation(generation)

    @strawberry.mutation(description="Save a generated trader (as generated, or edited)")
    async def create_trader_from_generation(
        self, info: Info, input: GeneratedTraderInput
    ) -> Trader:
        user = info.context.require_user()
        try:
            trader = await info.context.traders.create(user, _fields(input))
        except InvalidInputError as exc:
            raise InvalidInputError(
                [FieldError(GENERATED_PATHS.get(e.field, e.field), e.message) for e in exc.errors]
            ) from None
        return Trader.from_model(trader)
