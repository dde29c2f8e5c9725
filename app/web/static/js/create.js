// Creating a trader: a sentence (or a template) -> a preview of the whole trader -> (a quick
// backtest of the preview on the market's stored candles) -> a name -> saved, and active if
// the user leaves "Activate now" checked. The advanced mode shows the filter code for
// editing, checked as it is typed.

import { CODE_NOT_SAVED, codeEditor } from "./code_editor.js";
import { ApiError } from "./graphql.js";
import { facts, h, label, money, percent, replace, toast } from "./dom.js";
import { equityChart } from "./charts.js";
import {
  BACKTEST, BACKTEST_RUN, CREATE_FROM_GENERATION, GENERATE, MARKET_NOW, TEMPLATES,
} from "./queries.js";

const BACKTEST_CANDLES = 300; // of the preview's interval, back from the newest close
const BACKTEST_POLL_MS = 1000;
const BACKTEST_POLLS = 180;
const INTERVAL_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function setUpCreation({ api, onCreated }) {
  const dialog = document.getElementById("create-dialog");
  const form = document.getElementById("describe-form");
  const describe = document.getElementById("describe-input");
  const generate = document.getElementById("generate");
  const describeError = document.getElementById("describe-error");
  const templateSelect = document.getElementById("template-select");
  const preview = document.getElementById("preview");
  let templates = null;

  async function loadTemplates() {
    if (templates) return;
    templates = (await api.request(TEMPLATES)).strategyTemplates;
    templateSelect.append(...templates.map((template) =>
      h("option", { value: template.key }, `${template.name}: ${template.summary}`)));
  }

  function open() {
    describeError.textContent = "";
    preview.hidden = true;
    preview.replaceChildren();
    templateSelect.value = "";
    dialog.showModal();
    describe.focus();
    loadTemplates().catch((error) => { describeError.textContent = error.message; });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    describeError.textContent = "";
    generate.disabled = true;
    generate.textContent = "Generating…";
    try {
      const { generateTrader } = await api.request(GENERATE, { description: describe.value });
      showPreview(generateTrader);
    } catch (error) {
      describeError.textContent = error instanceof ApiError && error.problems.length
        ? `${error.message}:\n${error.problems.join("\n")}` : error.message;
    } finally {
      generate.disabled = false;
      generate.textContent = "Preview";
    }
  });

  templateSelect.addEventListener("change", () => {
    const template = templates?.find((item) => item.key === templateSelect.value);
    if (!template) return;
    showPreview({
      ...template, suggestedName: template.name, description: template.summary,
      engine: "template", template: template.key, adaptations: [], dryRun: null,
    });
  });

  function showPreview(draft) {
    const name = h("input", { id: "preview-name", value: draft.suggestedName, required: true, maxlength: 80 });
    const activate = h("input", { id: "preview-activate", type: "checkbox", checked: true });
    const error = h("p", { class: "error", role: "alert", id: "preview-error" });
    const create = h("button", { type: "submit", class: "primary", id: "create-trader" }, "Create trader");
    const backtestBox = h("section", { id: "preview-backtest", "aria-live": "polite" });
    const backtest = h("button", { type: "button", id: "quick-backtest",
      onclick: () => runBacktest().catch((failure) => { backtestBox.textContent = failure.message; }),
    }, "Quick backtest");
    const editor = codeEditor(api, {
      id: "preview-code", code: draft.filterCode,
      context: () => ({ interval: draft.interval, symbols: draft.symbols }),
    });
    const risk = draft.riskParameters;
    let backtestChart = null;
    replace(preview,
      h("h3", {}, "Preview"),
      facts([
        ["Answered by", [draft.engine, draft.model ?? draft.template].filter(Boolean).join(" · ")],
        ["Interval", draft.interval],
        ["Symbols", draft.symbols.length ? draft.symbols.join(", ") : "the market's default universe"],
        ["Filter", h("ul", { id: "preview-filter" }, draft.filterDescription.map((line) => h("li", {}, line)))],
        ["Strategy", draft.strategyInstructions],
        ["Risk", `stop ${percent(risk.stopLoss)} · target ${percent(risk.takeProfit)} · `
          + `${risk.maxPositions ?? "—"} positions of ${percent(risk.positionSizePercent)} · `
          + `pause at ${percent(risk.maxDrawdown)} drawdown`],
        ["Matches now", draft.dryRun ? dryRunText(draft.dryRun) : null],
        ["Note", draft.fallbackReason],
      ]),
      draft.adaptations.length ? h("details", {},
        h("summary", {}, "What was read from the sentence"),
        h("ul", {}, draft.adaptations.map((line) => h("li", {}, line)))) : null,
      h("form", { id: "preview-form", onsubmit: (event) => { event.preventDefault(); save(); } },
        h("label", { for: "preview-name" }, "Name"), name,
        h("details", { id: "preview-advanced" },
          h("summary", {}, "Advanced: edit the filter code"),
          h("label", { for: "preview-code" }, "Filter code"), editor.element),
        h("label", { class: "check" }, activate, "Activate now (paper money)"),
        error,
        h("div", { class: "row" }, create, backtest)),
      backtestBox,
    );
    preview.hidden = false;
    name.focus();

    /** The preview as the user left it, in `GeneratedTraderInput` terms. */
    function asInput() {
      return {
        suggestedName: name.value, description: draft.description, filterCode: editor.value(),
        filterDescription: draft.filterDescription, strategyInstructions: draft.strategyInstructions,
        indicators: draft.indicators, riskParameters: draft.riskParameters,
        interval: draft.interval, symbols: draft.symbols,
      };
    }

    /** Backtest the preview over the market's newest stored candles, and draw its equity. */
    async function runBacktest() {
      backtest.disabled = true;
      backtestBox.replaceChildren(h("p", { class: "empty" }, "Backtest starting…"));
      try {
        const { market } = await api.request(MARKET_NOW);
        const to = new Date(market.lastCandleAt ?? Date.now());
        const from = new Date(to.getTime() - BACKTEST_CANDLES * intervalMs(draft.interval));
        const { backtestTrader: id } = await api.request(BACKTEST, {
          input: { trader: asInput(), from: from.toISOString(), to: to.toISOString(), data: "MARKET" },
        });
        for (let poll = 0; poll < BACKTEST_POLLS; poll += 1) {
          const { backtest: run } = await api.request(BACKTEST_RUN, { id });
          if (run.status === "DONE") return showBacktest(run.result, from, to);
          if (run.status === "FAILED" || run.status === "CANCELLED") {
            backtestBox.replaceChildren(h("p", { class: "error" }, `Backtest ${label(run.status)}: ${run.reason ?? ""}`));
            return null;
          }
          backtestBox.replaceChildren(h("p", { class: "empty" }, `Backtest ${label(run.status)}: ${percent(run.progress * 100)}`));
          await new Promise((resolve) => { setTimeout(resolve, BACKTEST_POLL_MS); });
        }
        backtestBox.replaceChildren(h("p", { class: "error" }, "The backtest is still running: try again later."));
        return null;
      } finally {
        backtest.disabled = false;
      }
    }

    function showBacktest(result, from, to) {
      const m = result.metrics;
      const chart = h("div", { class: "chart", id: "backtest-chart", role: "img", "aria-label": "Backtest equity" });
      replace(backtestBox,
        h("h3", {}, "Quick backtest"),
        facts([
          ["Window", `${from.toLocaleString()} – ${to.toLocaleString()} (${result.closes} closes)`],
          ["Signals", String(result.signals)],
          ["Closed trades", String(m.closedPositions)],
          ["P&L", `${money(m.totalPnL)} (${percent(m.totalPnLPercent)})`],
          ["Win rate", percent(m.winRate)],
          ["Max drawdown", percent(m.maxDrawdown)],
          ["Stopped", result.errors.join("; ")],
        ]),
        chart);
      backtestChart?.remove();
      backtestChart = equityChart(chart, result.equityCurve);
      return result;
    }

    async function save() {
      error.textContent = "";
      const code = editor.value();
      if (code !== draft.filterCode) {
        const validation = await editor.check();
        if (!validation?.valid) {
          error.textContent = CODE_NOT_SAVED;
          return;
        }
      }
      create.disabled = true;
      try {
        const { createTraderFromGeneration: trader } = await api.request(CREATE_FROM_GENERATION, {
          input: { ...asInput(), enabled: activate.checked },
        });
        dialog.close();
        toast(`${trader.name} created${trader.enabled ? " and running" : ""}`);
        onCreated(trader);
      } catch (failure) {
        error.textContent = failure instanceof ApiError && failure.fields.length
          ? failure.fields.map((field) => `${field.field}: ${field.message}`).join("\n")
          : failure.message;
      } finally {
        create.disabled = false;
      }
    }
  }

  return { open };
}

/** The candles of `interval` in milliseconds ("15m", "4h", "1d"). */
function intervalMs(interval) {
  const [, count, unit] = interval.match(/^(\d+)([mhdw])$/) ?? [null, "1", "h"];
  return Number(count) * INTERVAL_MS[unit];
}

function dryRunText(dryRun) {
  if (!dryRun.dryRun) return `not run${dryRun.dryRunSkipped ? `: ${dryRun.dryRunSkipped}` : ""}`;
  const some = dryRun.matches.slice(0, 5).join(", ");
  return `${dryRun.matches.length} of ${dryRun.evaluated} symbols${some ? ` (${some})` : ""}`;
}
