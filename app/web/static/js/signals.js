// The signal table (live from `signalEvents`: new rows appear, status changes update their
// row in place), the decision of a signal with its candles and levels, and the trades table.

import { candleChart } from "./charts.js";
import { facts, h, label, money, percent, pill, price, replace, signClass, time } from "./dom.js";
import { KLINES, SIGNAL_DETAIL, SIGNALS, TRADES } from "./queries.js";

const SHOWN_ROWS = 100;

export class SignalTable {
  /** `traderName(id)` names a row's trader; `visible()` gives { traderId, search }. */
  constructor({ api, traderName, visible }) {
    this.api = api;
    this.traderName = traderName;
    this.visible = visible;
    this.signals = new Map();
    this.rows = new Map();
    this.body = document.querySelector("#signals-table tbody");
    this.empty = document.getElementById("no-signals");
    this.detail = new SignalDetail(api, traderName);
  }

  async load() {
    const { traderId } = this.visible();
    const { signals } = await this.api.request(SIGNALS, { traderId });
    for (const signal of signals.nodes) this.upsert(signal, false);
    this.render();
  }

  /** A `signalEvents` message: a new row, or its row changed in place. */
  apply(event) {
    if (!event.signalId) return;
    const known = this.signals.get(event.signalId);
    const signal = {
      ...known,
      id: event.signalId, traderId: event.traderId,
      symbol: event.symbol ?? known?.symbol, interval: event.interval ?? known?.interval,
      side: event.side ?? known?.side, price: event.price ?? known?.price,
      status: event.status ?? known?.status, statusReason: event.reason ?? known?.statusReason,
      candleTime: event.candleTime ?? known?.candleTime,
    };
    this.upsert(signal, true);
    this.render();
    this.detail.changed(signal);
  }

  forgetTrader(traderId) {
    for (const [id, signal] of this.signals) {
      if (signal.traderId === traderId) {
        this.signals.delete(id);
        this.rows.delete(id);
      }
    }
    this.render();
  }

  upsert(signal, live) {
    const isNew = !this.signals.has(signal.id);
    this.signals.set(signal.id, signal);
    const row = this.rows.get(signal.id) ?? this.newRow(signal);
    this.fill(row, signal);
    if (live) {
      // A row the subscription added stays "new" as its signal moves on: the events of a
      // close go out together once its entries are made, a signal's creation with its
      // decision.
      row.dataset.live = isNew || row.dataset.live === "new" ? "new" : "updated";
      row.classList.remove("fresh");
      void row.offsetWidth; // restart the highlight animation
      row.classList.add("fresh");
    }
  }

  newRow(signal) {
    const open = () => this.detail.open(this.signals.get(signal.id));
    const row = h("tr", {
      tabindex: "0", dataset: { id: signal.id },
      onclick: open,
      onkeydown: (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault(); // else the same key press activates the dialog's close button
        open();
      },
    });
    this.rows.set(signal.id, row);
    return row;
  }

  fill(row, signal) {
    row.dataset.status = signal.status;
    row.dataset.trader = signal.traderId;
    row.setAttribute("aria-label", `${signal.symbol} signal of ${this.traderName(signal.traderId)}, ${label(signal.status)}`);
    row.replaceChildren(
      h("td", {}, time(signal.candleTime)),
      h("td", {}, this.traderName(signal.traderId)),
      h("td", {}, signal.symbol),
      h("td", { class: "wide" }, label(signal.side)),
      h("td", { class: "wide" }, price(signal.price)),
      h("td", { class: "status", title: signal.statusReason ?? "" }, pill(signal.status)),
    );
  }

  render() {
    const { traderId, search } = this.visible();
    const needle = search.trim().toLowerCase();
    const shown = [...this.signals.values()]
      .filter((signal) => !traderId || signal.traderId === traderId)
      .filter((signal) => !needle || signal.symbol?.toLowerCase().includes(needle)
        || this.traderName(signal.traderId).toLowerCase().includes(needle))
      .sort((a, b) => (b.candleTime ?? "").localeCompare(a.candleTime ?? ""))
      .slice(0, SHOWN_ROWS);
    for (const signal of shown) this.fill(this.rows.get(signal.id), signal);
    this.place(shown.map((signal) => this.rows.get(signal.id)));
    this.empty.hidden = shown.length > 0;
    this.empty.textContent = needle || traderId ? "No signals match: they appear here as they come."
      : "No signals yet: they appear here as traders' filters match.";
  }

  /** Put `rows` in the table in order, moving only the rows out of place: a row that stays
   * keeps the keyboard focus (moving an element in the document drops it). */
  place(rows) {
    const wanted = new Set(rows);
    for (const row of [...this.body.children]) if (!wanted.has(row)) row.remove();
    rows.forEach((row, index) => {
      const current = this.body.children[index] ?? null;
      if (current !== row) this.body.insertBefore(row, current);
    });
  }
}

/** The dialog with one signal's decision: reasoning, levels, and its symbol's candles. */
class SignalDetail {
  constructor(api, traderName) {
    this.api = api;
    this.traderName = traderName;
    this.dialog = document.getElementById("signal-dialog");
    this.heading = document.getElementById("signal-heading");
    this.body = document.getElementById("signal-detail");
    this.signal = null;
    this.chart = null;
    this.dialog.addEventListener("close", () => {
      this.signal = null;
      this.chart?.remove();
      this.chart = null;
    });
  }

  open(signal) {
    this.signal = signal;
    this.heading.textContent = `${signal.symbol} · ${this.traderName(signal.traderId)}`;
    this.body.replaceChildren(h("p", { class: "empty" }, "Loading…"));
    this.dialog.showModal();
    this.refresh().catch((error) => {
      this.body.replaceChildren(h("p", { class: "error" }, error.message));
    });
  }

  changed(signal) {
    if (this.signal?.id === signal.id) {
      this.signal = signal;
      this.refresh().catch(() => {}); // the dialog keeps what it showed; the next event retries
    }
  }

  async refresh() {
    const signal = this.signal;
    const [detail, klines] = await Promise.all([
      this.api.request(SIGNAL_DETAIL, { traderId: signal.traderId, symbol: signal.symbol }),
      this.api.request(KLINES, { symbol: signal.symbol, interval: signal.interval })
        .catch(() => null), // an API process without the engine has no candles to show
    ]);
    if (this.signal?.id !== signal.id) return;
    const found = detail.signals.nodes.find((node) => node.id === signal.id) ?? { ...signal, transitions: [] };
    this.render(found, klines?.klines.candles ?? []);
  }

  render(signal, candles) {
    const analysis = signal.analysis;
    const levels = analysis?.keyLevels;
    const chartBox = h("div", { class: "chart", id: "signal-chart", role: "img",
      "aria-label": `${signal.symbol} candles with the entry, stop and targets` });
    this.chart?.remove();
    this.chart = null;
    replace(this.body,
      facts([
        ["Status", h("span", {}, pill(signal.status), signal.statusReason ? ` ${signal.statusReason}` : "")],
        ["Side", label(signal.side)],
        ["Price", price(signal.price)],
        ["Candle", `${time(signal.candleTime)} (${signal.interval})`],
      ]),
      analysis ? h("section", { id: "decision" },
        h("h3", {}, "Decision"),
        facts([
          ["Decision", pill(analysis.decision)],
          ["Confidence", percent(analysis.confidence * 100)],
          ["Answered by", [label(analysis.engine), analysis.model].filter(Boolean).join(" · ")],
          ["Reward : risk", analysis.riskReward ? Number(analysis.riskReward).toFixed(2) : null],
          ["Entry", levels.entry ? price(levels.entry) : null],
          ["Stop", levels.stopLoss ? price(levels.stopLoss) : null],
          ["Targets", levels.takeProfit.length ? levels.takeProfit.map(price).join(", ") : null],
          ["Setup", analysis.tradePlan.setup],
          ["Invalidation", analysis.tradePlan.invalidation],
          ["Why the rules answered", analysis.fallbackReason],
          ["Unusable answer", analysis.invalidReason],
        ]),
        h("h3", {}, "Reasoning"),
        h("p", { class: "reasoning" }, analysis.reasoning)) : h("p", { class: "empty", id: "decision-pending" },
        "Not analyzed yet: the decision appears here as soon as it is made."),
      candles.length ? chartBox : null,
      signal.trade ? h("section", {}, h("h3", {}, "Trade"), facts([
        ["Status", pill(signal.trade.status)],
        ["Entry", price(signal.trade.entryPrice)],
        ["Exit", price(signal.trade.exitPrice)],
        ["P&L", h("span", { class: signClass(signal.trade.pnl) }, money(signal.trade.pnl))],
      ])) : null,
      signal.transitions.length ? h("section", {}, h("h3", {}, "History"), h("ul", {},
        signal.transitions.map((step) => h("li", {},
          `${time(step.at)}: ${label(step.fromStatus)} → ${label(step.toStatus)}${step.reason ? ` (${step.reason})` : ""}`)))) : null,
    );
    if (candles.length) {
      const marks = [
        levels?.entry && { price: levels.entry, title: "entry", kind: "entry" },
        levels?.stopLoss && { price: levels.stopLoss, title: "stop", kind: "stop" },
        ...(levels?.takeProfit ?? []).map((target, index) => ({ price: target, title: `TP${index + 1}`, kind: "target" })),
      ].filter(Boolean);
      this.chart = candleChart(chartBox, candles, marks, signal.candleTime);
    }
  }
}

export class TradeTable {
  constructor({ api, traderName, visible, report }) {
    this.api = api;
    this.report = report;
    this.traderName = traderName;
    this.visible = visible;
    this.body = document.querySelector("#trades-table tbody");
    this.empty = document.getElementById("no-trades");
    this.timer = null;
  }

  async load() {
    const { traderId } = this.visible();
    const { trades } = await this.api.request(TRADES, { traderId });
    this.body.replaceChildren(...trades.nodes.map((trade) => h("tr", { dataset: { id: trade.id, status: trade.status } },
      h("td", {}, time(trade.openedAt)),
      h("td", {}, this.traderName(trade.traderId)),
      h("td", {}, `${trade.symbol} ${label(trade.side)}`),
      h("td", { class: "wide" }, label(trade.mode)),
      h("td", { class: "wide" }, price(trade.entryPrice)),
      h("td", { class: "wide" }, price(trade.exitPrice)),
      h("td", { title: trade.exitReason ? label(trade.exitReason) : "" }, pill(trade.status)),
      h("td", { class: signClass(trade.pnl) }, trade.pnl === null ? "—" : `${money(trade.pnl)} (${percent(trade.pnlPercent)})`),
    )));
    this.empty.hidden = trades.nodes.length > 0;
  }

  /** A trade event: re-read the table soon (events come in bursts as orders fill). */
  changed() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load().catch(this.report), 500);
  }
}
