// Charts drawn with TradingView's lightweight-charts (vendor/, a global script loaded the
// first time a chart is drawn, so the page's first load does not wait for it): a trader's
// equity curve, and a symbol's candles with a signal's levels marked.

const LIBRARY = "vendor/lightweight-charts.standalone.production.js";
let library = null;

function loadLibrary() {
  library ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = LIBRARY;
    script.onload = () => resolve(window.LightweightCharts);
    script.onerror = () => reject(new Error("the chart library did not load"));
    document.head.append(script);
  });
  return library;
}

const COLORS = { text: "#8b96a5", grid: "#222b36", up: "#26a69a", down: "#ef5350", line: "#4c9aff" };

function seconds(isoTime) {
  return Math.floor(new Date(isoTime).getTime() / 1000);
}

/** Points in strictly rising time, the later value kept for a repeated second. */
function rising(points) {
  const bySecond = new Map(points.map((point) => [point.time, point]));
  return [...bySecond.values()].sort((a, b) => a.time - b.time);
}

/** About five significant digits whatever the price: 38,000.00, 3.9541, 0.092312. */
function priceFormat(price) {
  const precision = Math.min(8, Math.max(2, 4 - Math.floor(Math.log10(Math.abs(price) || 1))));
  return { type: "price", precision, minMove: 10 ** -precision };
}

function newChart(charts, container) {
  const { createChart, ColorType } = charts;
  return createChart(container, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: COLORS.text },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { borderVisible: false },
  });
}

/**
 * A chart drawn into `container` as soon as the library is there; `remove()` frees it, also
 * before it was drawn (then it never is).
 */
function chartIn(container, draw) {
  let chart = null;
  let removed = false;
  loadLibrary().then((charts) => {
    if (!removed) chart = draw(charts);
  }, (error) => {
    container.textContent = error.message;
  });
  return {
    remove() {
      removed = true;
      chart?.remove();
    },
  };
}

/** An equity curve in `container`. */
export function equityChart(container, curve) {
  return chartIn(container, (charts) => drawEquity(charts, container, curve));
}

/** Candles with horizontal lines at `levels` ([{price, title, kind}]) and a marker at `at`. */
export function candleChart(container, candles, levels, at) {
  return chartIn(container, (charts) => drawCandles(charts, container, candles, levels, at));
}

function drawEquity(charts, container, curve) {
  const chart = newChart(charts, container);
  const series = chart.addSeries(charts.AreaSeries, {
    lineColor: COLORS.line, topColor: "rgba(76,154,255,.35)", bottomColor: "rgba(76,154,255,0)",
    lineWidth: 2,
  });
  series.setData(rising(curve.map((point) => ({ time: seconds(point.time), value: Number(point.equity) }))));
  chart.timeScale().fitContent();
  return chart;
}

function drawCandles(charts, container, candles, levels, at) {
  const { CandlestickSeries, LineStyle, createSeriesMarkers } = charts;
  const chart = newChart(charts, container);
  const series = chart.addSeries(CandlestickSeries, {
    upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    borderVisible: false, priceFormat: priceFormat(candles.at(-1)?.close ?? 1),
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
