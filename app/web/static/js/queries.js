// Every GraphQL document the dashboard sends, in one place: the page's whole use of the API.

const RISK = `stopLoss takeProfit maxPositions positionSizePercent maxDrawdown minRiskReward
  trailingStop cooldownCandles stopLossGuard stopLossGuardCandles reviewCandles`;
const SUMMARY_METRICS = "totalSignals totalPnL winRate activePositions closedPositions";
const TRADER_SUMMARY = `id name enabled mode status statusReason interval
  metrics { ${SUMMARY_METRICS} }`;
const DRY_RUN = `valid matches evaluated dryRun dryRunSkipped missingSymbols
  errors { line column message }`;
const DRAFT = `filterCode filterDescription strategyInstructions interval symbols
  indicators { name params { name value } } riskParameters { ${RISK} }`;
const SIGNAL_ROW = "id traderId symbol interval side price status statusReason candleTime";
const TRADE_ROW = `id traderId mode symbol side status amount entryPrice exitPrice pnl
  pnlPercent exitReason openedAt closedAt`;

export const START = `{ me { name } market { source isLiveMarket }
  traders(first: 100) { nodes { ${TRADER_SUMMARY} } } }`;

export const TRADERS = `{ traders(first: 100) { nodes { ${TRADER_SUMMARY} } } }`;

export const TRADER = `query Trader($id: ID!) {
  trader(id: $id) {
    ${TRADER_SUMMARY} description symbols hasExchangeCredentials
    filter { code description }
    strategy { instructions riskManagement { ${RISK} } }
    metrics {
      totalPnLPercent avgWin avgLoss expectancy profitFactor feesPaid unrealisedPnL
      demoMetrics { equity maxDrawdown sharpeRatio closedPositions }
      liveMetrics { equity maxDrawdown sharpeRatio closedPositions }
    }
  }
  demo: traderPerformance(traderId: $id, mode: DEMO, points: 500) { equityCurve { time equity } }
  live: traderPerformance(traderId: $id, mode: LIVE, points: 500) { equityCurve { time equity } }
}`;

export const SIGNALS = `query Signals($traderId: ID) {
  signals(traderId: $traderId, first: 100) { nodes { ${SIGNAL_ROW} } } }`;

export const SIGNAL_DETAIL = `query Signal($traderId: ID!, $symbol: String!) {
  signals(traderId: $traderId, symbol: $symbol, first: 50) { nodes {
    ${SIGNAL_ROW} createdAt
    analysis {
      decision direction confidence reasoning riskReward engine model fallbackReason
      invalidReason asOf tradePlan { setup invalidation }
      keyLevels { entry stopLoss takeProfit support resistance }
    }
    transitions { fromStatus toStatus reason at }
    trade { id status entryPrice exitPrice stopLoss takeProfit pnl }
  } } }`;

export const KLINES = `query Klines($symbol: String!, $interval: String!) {
  klines(symbol: $symbol, interval: $interval, limit: 150) {
    candles { time open high low close } } }`;

export const TRADES = `query Trades($traderId: ID) {
  trades(traderId: $traderId, first: 50) { nodes { ${TRADE_ROW} } } }`;

export const TEMPLATES = `{ strategyTemplates { key name summary ${DRAFT} } }`;

export const GENERATE = `mutation Generate($description: String!) {
  generateTrader(description: $description) {
    suggestedName description ${DRAFT} engine model template adaptations fallbackReason
    dryRun { ${DRY_RUN} }
  } }`;

export const CREATE_FROM_GENERATION = `mutation Create($input: GeneratedTraderInput!) {
  createTraderFromGeneration(input: $input) { ${TRADER_SUMMARY} } }`;

export const MARKET_NOW = "{ market { lastCandleAt } }";

export const BACKTEST = `mutation Backtest($input: BacktestInput!) { backtestTrader(input: $input) }`;

export const BACKTEST_RUN = `query Run($id: ID!) { backtest(id: $id) {
  status progress reason
  result { signals closes errors equityCurve { time equity }
    metrics { totalPnL totalPnLPercent winRate closedPositions maxDrawdown } } } }`;

export const VALIDATE_FILTER = `query Validate($code: String!, $symbols: [String!], $interval: String!) {
  validateFilter(code: $code, symbols: $symbols, interval: $interval) { ${DRY_RUN} } }`;

export const SET_ENABLED = `mutation SetEnabled($id: ID!, $enabled: Boolean!) {
  setTraderEnabled(id: $id, enabled: $enabled) { ${TRADER_SUMMARY} } }`;

export const UPDATE_TRADER = `mutation Update($id: ID!, $input: UpdateTraderInput!) {
  updateTrader(id: $id, input: $input) { ${TRADER_SUMMARY} } }`;

export const DELETE_TRADER = `mutation Delete($id: ID!) { deleteTrader(id: $id, confirm: true) }`;

export const EMERGENCY_STOP = `mutation Stop($traderId: ID) {
  emergencyStop(traderId: $traderId) {
    traders { ${TRADER_SUMMARY} } ordersCancelled positionsClosed closesRequested } }`;

export const SIGNAL_EVENTS = `subscription { signalEvents {
  traderId kind signalId symbol interval side status reason price candleTime } }`;

export const TRADER_STATUS = `subscription { traderStatus {
  traderId kind status reason enabled mode } }`;

export const PNL_UPDATES = `subscription { pnlUpdates {
  traderId metrics { ${SUMMARY_METRICS} } } }`;

export const TRADE_EVENTS = `subscription { tradeEvents { traderId kind tradeId } }`;
