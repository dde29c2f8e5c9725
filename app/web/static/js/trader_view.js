// One trader: its figures, equity curves (demo and live side by side once live has any),
// settings (the advanced ones folded away), the emergency stop, and deletion.

import { equityChart } from "./charts.js";
import { CODE_NOT_SAVED, codeEditor } from "./code_editor.js";
import { ApiError } from "./graphql.js";
import { amount, confirmAction, h, money, percent, pill, replace, signClass } from "./dom.js";
import { DELETE_TRADER, EMERGENCY_STOP, TRADER, UPDATE_TRADER } from "./queries.js";

const BASIC_RISK = [
  ["stopLoss", "Stop loss %"], ["takeProfit", "Take profit %"],
  ["maxPositions", "Max open positions"], ["positionSizePercent", "Position size % of equity"],
];
const ADVANCED_RISK = [
  ["maxDrawdown", "Pause at drawdown %"], ["minRiskReward", "Least reward : risk"],
  ["trailingStop", "Trailing stop %"], ["cooldownCandles", "Cooldown candles"],
  ["stopLossGuard", "Stop-outs that lock entries"], ["stopLossGuardCandles", "Lock window candles"],
  ["reviewCandles", "Review a position every N candles"],
];
const INTEGER_RISK = new Set(["maxPositions", "cooldownCandles", "stopLossGuard", "stopLossGuardCandles", "reviewCandles"]);

export class TraderView {
  constructor({ api, report, onChanged, onDeleted, onToggle }) {
    this.api = api;
    this.report = report;
    this.onChanged = onChanged;
    this.onDeleted = onDeleted;
    this.onToggle = onToggle;
    this.section = document.getElementById("trader-view");
    this.charts = [];
    this.traderId = null;
  }

  hide() {
    this.traderId = null;
    this.clearCharts();
    this.section.hidden = true;
    replace(this.section, );
  }

  async show(traderId, { refresh = false } = {}) {
    this.traderId = traderId;
    const data = await this.api.request(TRADER, { id: traderId });
    if (this.traderId !== traderId || (refresh && this.editing())) return;
    this.render(data.trader, data.demo.equityCurve, data.live.equityCurve);
  }

  /** Re-read the figures after a P&L or status event, unless the user is editing (also
   * when they opened the settings while the figures were on their way). */
  refresh() {
    if (this.traderId && !this.editing()) {
      this.show(this.traderId, { refresh: true }).catch(this.report);
    }
  }

  editing() {
    return this.section.querySelector("details[open]") !== null;
  }

  clearCharts() {
    for (const chart of this.charts) chart.remove();
    this.charts = [];
  }

  render(trader, demoCurve, liveCurve) {
    this.clearCharts();
    const m = trader.metrics;
    const toggle = h("input", {
      type: "checkbox", role: "switch", checked: trader.enabled, id: "trader-view-enabled",
      "aria-label": `${trader.name} enabled`,
      onchange: () => this.onToggle(trader.id, toggle.checked),
    });
    const charts = [["Demo equity", demoCurve]];
    if (liveCurve.length) charts.push(["Live equity", liveCurve]);
    const chartBoxes = charts.map(([title]) => h("div", { class: "chart", role: "img", "aria-label": title }));
    replace(this.section, 
      h("header", {},
        h("h2", {}, trader.name),
        pill(trader.status), pill(trader.mode),
        h("label", { class: "switch", title: "enabled" }, toggle),
        h("button", { type: "button", class: "danger", onclick: () => this.stop(trader).catch(this.report) }, "Stop trader"),
        h("button", { type: "button", class: "quiet", onclick: () => this.remove(trader).catch(this.report) }, "Delete")),
      trader.statusReason ? h("p", { class: "empty" }, trader.statusReason) : null,
      trader.description ? h("p", {}, trader.description) : null,
      h("dl", { class: "metrics" }, [
        ["P&L", money(m.totalPnL), signClass(m.totalPnL)],
        ["P&L %", percent(m.totalPnLPercent), signClass(m.totalPnLPercent)],
        ["Win rate", percent(m.winRate)],
        ["Signals", m.totalSignals],
        ["Open positions", m.activePositions],
        ["Closed trades", m.closedPositions],
        ["Unrealised", money(m.unrealisedPnL), signClass(m.unrealisedPnL)],
        ["Avg win / loss", `${money(m.avgWin)} / ${money(m.avgLoss)}`],
        ["Expectancy", money(m.expectancy), signClass(m.expectancy)],
        ["Profit factor", m.profitFactor ? Number(m.profitFactor).toFixed(2) : "—"],
        ["Fees", amount(m.feesPaid)],
        ["Demo equity", amount(m.demoMetrics?.equity)],
        ["Max drawdown", percent(m.demoMetrics?.maxDrawdown)],
        ["Sharpe", m.demoMetrics?.sharpeRatio ? Number(m.demoMetrics.sharpeRatio).toFixed(2) : "—"],
      ].map(([name, value, className]) => h("div", { class: "metric" },
        h("dt", {}, name), h("dd", { class: className || null }, String(value))))),
      h("div", { class: "charts" }, charts.map(([title], index) => h("div", {},
        h("p", { class: "chart-title" }, title), chartBoxes[index]))),
      this.settings(trader),
    );
    this.section.hidden = false;
    this.charts = charts.map(([, curve], index) => equityChart(chartBoxes[index], curve));
  }

  settings(trader) {
    const risk = trader.strategy.riskManagement;
    const inputs = new Map();
    const field = (path, title, value, { multiline = false, ...attributes } = {}) => {
      const id = `setting-${path.replaceAll(".", "-")}`;
      const input = h(multiline ? "textarea" : "input", { id, ...attributes });
      input.value = value ?? "";
      inputs.set(path, { input, original: input.value });
      return h("div", {}, h("label", { for: id }, title), input,
        h("div", { class: "field-error", id: `${id}-error` }));
    };
    const riskFields = (list) => list.map(([name, title]) => field(
      `strategy.riskManagement.${name}`, title, risk[name], { inputmode: "decimal" }));
    const editor = codeEditor(this.api, {
      id: "setting-filter-code", code: trader.filter.code,
      context: () => ({
        interval: inputs.get("interval").input.value,
        symbols: splitSymbols(inputs.get("symbols").input.value),
      }),
    });
    const error = h("p", { class: "error", role: "alert" });
    const save = h("button", { type: "submit", class: "primary" }, "Save settings");
    const form = h("form", { id: "settings-form", onsubmit: (event) => { event.preventDefault(); submit().catch(this.report); } },
      field("name", "Name", trader.name, { required: true, maxlength: 80 }),
      field("description", "Description", trader.description),
      field("strategy.instructions", "Strategy", trader.strategy.instructions, { multiline: true, rows: 3 }),
      h("div", { class: "form-grid" }, riskFields(BASIC_RISK)),
      h("details", { id: "advanced-settings" }, h("summary", {}, "Advanced settings"),
        h("div", { class: "form-grid" },
          field("interval", "Interval", trader.interval),
          field("symbols", "Symbols (empty: the whole market)", trader.symbols.join(", ")),
          riskFields(ADVANCED_RISK)),
        h("label", { for: "setting-filter-code" }, "Filter code"), editor.element),
      error, h("div", { class: "row" }, save));

    const submit = async () => {
      error.textContent = "";
      for (const { input } of inputs.values()) document.getElementById(`${input.id}-error`).textContent = "";
      const input = {};
      let invalid = false;
      for (const [path, { input: element, original }] of inputs) {
        if (element.value === original) continue;
        if (INTEGER_RISK.has(path.split(".").at(-1)) && !/^\s*\d*\s*$/.test(element.value)) {
          document.getElementById(`${element.id}-error`).textContent = "must be a whole number";
          invalid = true;
        }
        assign(input, path, fieldValue(path, element.value));
      }
      if (invalid) {
        error.textContent = "Some settings are not valid: nothing was saved.";
        return;
      }
      if (editor.value() !== trader.filter.code) {
        const validation = await editor.check();
        if (!validation?.valid) {
          error.textContent = CODE_NOT_SAVED;
          return;
        }
        input.filter = { code: editor.value() };
      }
      if (!Object.keys(input).length) {
        error.textContent = "Nothing changed.";
        return;
      }
      save.disabled = true;
      try {
        const { updateTrader } = await this.api.request(UPDATE_TRADER, { id: trader.id, input });
        this.onChanged(updateTrader);
        form.closest("details").open = false;
        await this.show(trader.id);
      } catch (failure) {
        if (!(failure instanceof ApiError) || !failure.fields.length) {
          error.textContent = failure.message;
          return;
        }
        error.textContent = "Some settings are not valid: nothing was saved.";
        for (const { field: path, message } of failure.fields) {
          const target = inputs.get(path)?.input.id ?? "setting-filter-code";
          const slot = document.getElementById(`${target}-error`);
          if (slot) slot.textContent = message;
          else error.textContent += `\n${path}: ${message}`;
        }
      } finally {
        save.disabled = false;
      }
    };
    return h("details", { id: "trader-settings" }, h("summary", {}, "Settings"), form);
  }

  async stop(trader) {
    const sure = await confirmAction(
      `Stop ${trader.name}: disable it, cancel its open orders and close its positions at market.`,
      "Stop trader");
    if (!sure) return;
    const { emergencyStop } = await this.api.request(EMERGENCY_STOP, { traderId: trader.id });
    for (const stopped of emergencyStop.traders) this.onChanged(stopped);
    await this.show(trader.id);
  }

  async remove(trader) {
    const sure = await confirmAction(
      `Delete ${trader.name} with all its signals and trades? This cannot be undone.`, "Delete");
    if (!sure) return;
    await this.api.request(DELETE_TRADER, { id: trader.id });
    this.hide();
    this.onDeleted(trader.id);
  }
}

function splitSymbols(text) {
  return text.split(/[\s,]+/).map((symbol) => symbol.trim().toUpperCase()).filter(Boolean);
}

function fieldValue(path, text) {
  if (path === "symbols") return splitSymbols(text);
  const name = path.split(".").at(-1);
  if (path.startsWith("strategy.riskManagement.")) {
    if (text.trim() === "") return null;
    return INTEGER_RISK.has(name) ? Number(text) : text.trim();
  }
  return text;
}

function assign(target, path, value) {
  const keys = path.split(".");
  const last = keys.pop();
  let node = target;
  for (const key of keys) node = node[key] ??= {};
  node[last] = value;
}

