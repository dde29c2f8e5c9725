// The sidebar: the user's traders with mode, status, signals, P&L and win rate, a switch
// to enable or disable each, and a click to show one (and filter the tables to it).
// Items are updated in place, so a live update never steals the keyboard focus.

import { h, label, money, percent, signClass } from "./dom.js";

export class TraderList {
  constructor({ onSelect, onToggle }) {
    this.onSelect = onSelect;
    this.onToggle = onToggle;
    this.list = document.getElementById("trader-list");
    this.empty = document.getElementById("no-traders");
    this.all = document.getElementById("all-traders");
    this.total = document.getElementById("total-pnl");
    this.traders = new Map();
    this.items = new Map();
    this.selected = null;
    this.all.addEventListener("click", () => this.onSelect(null));
  }

  name(traderId) {
    return this.traders.get(traderId)?.name ?? "deleted trader";
  }

  /** Replace the whole list (a fresh read), keeping the items of traders that remain. */
  setAll(traders) {
    const ids = new Set(traders.map((trader) => trader.id));
    for (const id of this.traders.keys()) if (!ids.has(id)) this.forget(id);
    for (const trader of traders) this.update(trader);
    this.list.replaceChildren(...traders.map((trader) => this.items.get(trader.id).item));
    this.changed();
  }

  /** A trader's new fields (a mutation's answer or an event); unknown ones are added first. */
  update(fields) {
    const trader = { ...this.traders.get(fields.id), ...fields };
    this.traders.set(trader.id, trader);
    if (!this.items.has(trader.id)) {
      this.items.set(trader.id, this.newItem(trader.id));
      this.list.prepend(this.items.get(trader.id).item);
    }
    this.draw(trader);
    this.changed();
  }

  forget(traderId) {
    this.items.get(traderId)?.item.remove();
    this.items.delete(traderId);
    this.traders.delete(traderId);
    this.changed();
  }

  select(traderId) {
    this.selected = traderId;
    this.all.setAttribute("aria-pressed", String(traderId === null));
    for (const [id, { button }] of this.items) button.setAttribute("aria-pressed", String(id === traderId));
  }

  newItem(traderId) {
    const name = h("span", { class: "trader-name" });
    const meta = h("span", { class: "trader-meta" });
    const figures = h("span", { class: "trader-figures" });
    const button = h("button", {
      type: "button", class: "trader-select", "aria-pressed": "false",
      onclick: () => this.onSelect(traderId),
    }, name, meta, figures);
    const toggle = h("input", {
      type: "checkbox", role: "switch",
      onchange: () => this.onToggle(traderId, toggle.checked),
    });
    const item = h("li", { class: "trader", dataset: { id: traderId } },
      button, h("label", { class: "switch" }, toggle));
    return { item, button, name, meta, figures, toggle };
  }

  draw(trader) {
    const { item, name, meta, figures, toggle } = this.items.get(trader.id);
    const m = trader.metrics;
    item.dataset.status = trader.status;
    item.dataset.enabled = String(trader.enabled);
    name.textContent = trader.name;
    name.title = trader.name;
    meta.replaceChildren(
      h("span", { class: `trader-status status-${trader.status.toLowerCase()}` }, label(trader.status)),
      ` · ${label(trader.mode)} · ${trader.interval}`);
    meta.title = trader.statusReason ?? "";
    figures.replaceChildren(
      `${m.totalSignals} signals · `,
      h("span", { class: `trader-pnl ${signClass(m.totalPnL)}` }, money(m.totalPnL)),
      ` · ${percent(m.winRate)} win`);
    toggle.checked = trader.enabled;
    toggle.setAttribute("aria-label", `${trader.name} enabled`);
  }

  changed() {
    this.empty.hidden = this.traders.size > 0;
    const traders = [...this.traders.values()];
    const total = traders.reduce((sum, trader) => sum + Number(trader.metrics?.totalPnL ?? 0), 0);
    this.total.hidden = traders.length === 0;
    this.total.className = `total-pnl ${signClass(total)}`;
    this.total.textContent = `P&L ${money(total)}`;
  }
}
