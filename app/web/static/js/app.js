// The dashboard's entry point: sign-in (the token from the first-run link's fragment goes
// into sessionStorage and out of the address bar), then the trader list, tables and trader
// view, all kept live by one subscription connection.

import { ApiError, GraphQLClient, SubscriptionClient } from "./graphql.js";
import { confirmAction, toast } from "./dom.js";
import { setUpCreation } from "./create.js";
import {
  EMERGENCY_STOP, PNL_UPDATES, SET_ENABLED, SIGNAL_EVENTS, START, TRADE_EVENTS, TRADER_STATUS, TRADERS,
} from "./queries.js";
import { SignalTable, TradeTable } from "./signals.js";
import { TraderList } from "./trader_list.js";
import { TraderView } from "./trader_view.js";

const TOKEN_KEY = "traders.token";
const VIEW_REFRESH_MS = 3000;
const DRAWN_MARK = "traders-drawn"; // a User Timing mark: when the page first shows the traders

const TOKEN_REFUSED = "That token was not accepted: it is unknown or was revoked. "
  + "Paste a current one, or issue another with `traders user token NAME`.";

/** A failure the user should see; a token refused mid-session leads back to sign-in. */
function report(error) {
  if (error instanceof ApiError && error.code === "UNAUTHENTICATED") {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(TOKEN_REFUSED);
    return;
  }
  toast(error instanceof Error ? error.message : String(error));
}

/** A `#token=...` link signs in once: the token moves to this tab's session storage. */
function takeTokenFromLink() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
}

function showSignIn(message = "") {
  document.getElementById("dashboard").hidden = true;
  document.getElementById("account-actions").hidden = true;
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-error").textContent = message;
  document.getElementById("token-input").focus();
}

let started = false;

document.getElementById("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  // After a token was refused mid-session, a fresh page drops the old one's listeners.
  if (started) location.reload();
  else boot();
});

async function boot() {
  takeTokenFromLink();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    showSignIn();
    return;
  }
  const api = new GraphQLClient(token);
  let first;
  try {
    first = await api.request(START);
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") {
      report(error);
    } else {
      showSignIn(`The server did not answer: ${error.message}`);
    }
    return;
  }
  started = true;
  new Dashboard(api, token).start(first);
}

class Dashboard {
  constructor(api, token) {
    this.api = api;
    this.selected = null;
    this.viewTimer = null;
    const visible = () => ({
      traderId: this.selected, search: document.getElementById("signal-search").value,
    });
    this.list = new TraderList({
      onSelect: (id) => this.select(id).catch(report),
      onToggle: (id, enabled) => this.toggle(id, enabled),
    });
    const traderName = (id) => this.list.name(id);
    this.signals = new SignalTable({ api, traderName, visible });
    this.trades = new TradeTable({ api, traderName, visible, report });
    this.view = new TraderView({
      api, report,
      onChanged: (trader) => this.list.update(trader),
      onDeleted: (id) => this.forget(id),
      onToggle: (id, enabled) => this.toggle(id, enabled),
    });
    this.creation = setUpCreation({
      api,
      onCreated: (trader) => {
        this.list.update(trader);
        this.select(trader.id).catch(report);
      },
    });
    this.live = new SubscriptionClient(token, {
      onState: (state, reason) => this.connection(state, reason),
      onResume: () => this.reload().catch(report),
    });
  }

  start({ me, market, traders }) {
    document.getElementById("sign-in").hidden = true;
    document.getElementById("dashboard").hidden = false;
    document.getElementById("account-actions").hidden = false;
    const badge = document.getElementById("market");
    badge.textContent = market.isLiveMarket ? market.source : `${market.source} prices`;
    badge.classList.toggle("warn", !market.isLiveMarket);
    badge.title = market.isLiveMarket ? "real market data" : "not real prices: live trading is refused";
    document.title = `traders · ${me.name}`;
    this.list.setAll(traders.nodes);
    performance.mark(DRAWN_MARK);
    document.getElementById("new-trader").addEventListener("click", () => this.creation.open());
    document.getElementById("stop-all").addEventListener("click", () => this.stopAll().catch(report));
    document.getElementById("sign-out").addEventListener("click", () => this.signOut());
    document.getElementById("signal-search").addEventListener("input", () => this.signals.render());
    this.live.subscribe(SIGNAL_EVENTS, {}, ({ signalEvents }) => this.signals.apply(signalEvents));
    this.live.subscribe(TRADER_STATUS, {}, ({ traderStatus }) => this.traderStatus(traderStatus));
    this.live.subscribe(PNL_UPDATES, {}, ({ pnlUpdates }) => this.pnl(pnlUpdates));
    this.live.subscribe(TRADE_EVENTS, {}, ({ tradeEvents }) => this.trades.changed(tradeEvents));
    this.live.start();
    Promise.all([this.signals.load(), this.trades.load()]).catch(report);
  }

  async reload() {
    const { traders } = await this.api.request(TRADERS);
    this.list.setAll(traders.nodes);
    await Promise.all([this.signals.load(), this.trades.load()]);
    this.view.refresh();
  }

  async select(traderId) {
    this.selected = traderId;
    this.list.select(traderId);
    this.signals.render();
    if (traderId === null) this.view.hide();
    await Promise.all([
      traderId === null ? null : this.view.show(traderId),
      this.signals.load(),
      this.trades.load(),
    ]);
  }

  async toggle(traderId, enabled) {
    try {
      const { setTraderEnabled } = await this.api.request(SET_ENABLED, { id: traderId, enabled });
      this.list.update(setTraderEnabled);
      if (this.selected === traderId) this.view.refresh();
    } catch (error) {
      this.list.update({ id: traderId });
      report(error);
    }
  }

  traderStatus(event) {
    if (event.kind === "deleted") {
      this.forget(event.traderId);
    } else if (!this.list.traders.has(event.traderId)) {
      this.reload().catch(report);
    } else {
      this.list.update({
        id: event.traderId, status: event.status, enabled: event.enabled, mode: event.mode,
        statusReason: event.reason,
      });
      this.refreshViewOf(event.traderId);
    }
  }

  pnl(event) {
    if (!this.list.traders.has(event.traderId)) return;
    this.list.update({ id: event.traderId, metrics: event.metrics });
    this.refreshViewOf(event.traderId);
  }

  /** The selected trader's view re-reads its figures at most every few seconds. */
  refreshViewOf(traderId) {
    if (traderId !== this.selected || this.viewTimer) return;
    this.viewTimer = setTimeout(() => {
      this.viewTimer = null;
      this.view.refresh();
    }, VIEW_REFRESH_MS);
  }

  forget(traderId) {
    this.list.forget(traderId);
    this.signals.forgetTrader(traderId);
    if (this.selected === traderId) this.select(null).catch(report);
  }

  async stopAll() {
    const sure = await confirmAction(
      "Stop every trader: disable them all, cancel their open orders and close every position at market.",
      "Stop everything");
    if (!sure) return;
    const { emergencyStop } = await this.api.request(EMERGENCY_STOP, { traderId: null });
    for (const trader of emergencyStop.traders) this.list.update(trader);
    toast(`Stopped ${emergencyStop.traders.length} traders: ${emergencyStop.ordersCancelled} orders `
      + `cancelled, ${emergencyStop.positionsClosed + emergencyStop.closesRequested} positions closed`);
    this.view.refresh();
  }

  connection(state, reason) {
    const element = document.getElementById("connection");
    element.classList.toggle("live", state === "live");
    element.textContent = state === "rejected" ? `no live updates: ${reason}` : state;
  }

  signOut() {
    this.live.stop();
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  }
}

boot();
