// Charts drawn with TradingView's lightweight-charts (vendor/, loaded as a global script):
// a trader's equity curve, and a symbol's candles with a signal's levels marked.

const COLORS = { text: "#8b96a5", grid: "#222b36", up: "#26a69a", down: "#ef5350", line: "#4c9aff" };

function seconds(isoTime) {
  return Math.floor(new Date(isoTime).getTime() / 1000);
}

/** Points in strictly rising time, the later value kept for a repeated second. */
function rising(points) {
  const bySecond = new Map(points.map((point) => [point.time, point]));
  return [...bySecond.values()].sort((a, b) => a.time - b.time);
}

function newChart(container) {
  const { createChart, ColorType } = window.LightweightCharts;
  return createChart(container, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: COLORS.text },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { borderVisible: false },
  });
}

/** Draw an equity curve into `container`; returns the chart (call `remove()` to free it). */
export function equityChart(container, curve) {
  const chart = newChart(container);
  const series = chart.addSeries(window.LightweightCharts.AreaSeries, {
    lineColor: COLORS.line, topColor: "rgba(76,154,255,.35)", bottomColor: "rgba(76,154,255,0)",
    lineWidth: 2,
  });
  series.setData(rising(curve.map((point) => ({ time: seconds(point.time), value: Number(point.equity) }))));
  chart.timeScale().fitContent();
  return chart;
}

/** Candles with horizontal lines at `levels` ([{price, title, kind}]) and a marker at `at`. */
export function candleChart(container, candles, levels, at) {
  const { CandlestickSeries, LineStyle, createSeriesMarkers } = window.LightweightCharts;
  const chart = newChart(container);
  const series = chart.addSeries(CandlestickSeries, {
    upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    borderVisible: false,
  });
  series.setData(rising(candles.map((candle) => ({
    time: seconds(candle.time), open: candle.open, high: candle.high, low: candle.low, close: candle.close,
  }))));
  for (const level of levels) {
    series.createPriceLine({
      price: Number(level.price),
      title: level.title,
      color: level.kind === "stop" ? COLORS.down : level.kind === "target" ? COLORS.up : COLORS.line,
      lineWidth: 1,
      lineStyle: level.kind === "entry" ? LineStyle.Solid : LineStyle.Dashed,
    });
  }
  if (at) {
    createSeriesMarkers(series, [
      { time: seconds(at), position: "belowBar", color: COLORS.line, shape: "arrowUp", text: "signal" },
    ]);
  }
  chart.timeScale().fitContent();
  return chart;
}
