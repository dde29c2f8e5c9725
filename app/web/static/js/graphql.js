// The dashboard's only way to the backend: the public GraphQL API, as any client uses it.
// Queries and mutations are POSTs per GraphQL-over-HTTP; subscriptions run over one
// websocket speaking graphql-transport-ws, re-subscribed after every reconnect.

const RESPONSE_TYPES = "application/graphql-response+json, application/json;q=0.9";
const PROTOCOL = "graphql-transport-ws";
const MAX_RECONNECT_DELAY_MS = 15000;

/** A GraphQL or HTTP failure with what the API said: code, invalid fields, problems. */
export class ApiError extends Error {
  constructor(message, { status = 200, code = null, fields = [], problems = [] } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.problems = problems;
  }

  /** The message for one input field (by its GraphQL path), if the API named it. */
  fieldMessage(path) {
    return this.fields.find((field) => field.field === path)?.message ?? null;
  }
}

export class GraphQLClient {
  constructor(token) {
    this.token = token;
  }

  async request(query, variables = {}) {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: RESPONSE_TYPES,
        Authorization: `Bearer ${this.token}`,
      },
      body: JSON.stringify({ query, variables }),
    });
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`the server answered ${response.status} without a GraphQL body`, {
        status: response.status,
      });
    }
    const [first] = body.errors ?? [];
    if (first) {
      const extensions = first.extensions ?? {};
      throw new ApiError(first.message, {
        status: response.status,
        code: extensions.code ?? (response.status === 401 ? "UNAUTHENTICATED" : null),
        fields: extensions.fields ?? [],
        problems: extensions.problems ?? [],
      });
    }
    return body.data;
  }
}

/**
 * One graphql-transport-ws connection carrying every subscription of the page.
 * `onState` hears "connecting", "live", "reconnecting" and "rejected"; after a reconnect
 * `onResume` lets the page re-read what it may have missed (the bus only notifies).
 */
export class SubscriptionClient {
  constructor(token, { onState = () => {}, onResume = () => {} } = {}) {
    this.token = token;
    this.onState = onState;
    this.onResume = onResume;
    this.subscriptions = new Map();
    this.nextId = 1;
    this.socket = null;
    this.acknowledged = false;
    this.attempts = 0;
    this.closed = false;
    this.everConnected = false;
  }

  start() {
    this.closed = false;
    this.connect();
  }

  stop() {
    this.closed = true;
    this.socket?.close(1000, "signed out");
  }

  subscribe(query, variables, onNext) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { query, variables, onNext });
    if (this.acknowledged) this.sendSubscribe(id);
    return () => {
      this.subscriptions.delete(id);
      if (this.acknowledged) this.send({ id, type: "complete" });
    };
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.onState("connecting");
    const socket = new WebSocket(`${scheme}//${location.host}/graphql`, PROTOCOL);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.send({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } });
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.closedWith(event.code));
  }

  receive(message) {
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.attempts = 0;
        this.onState("live");
        for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
        if (this.everConnected) this.onResume();
        this.everConnected = true;
        break;
      case "next":
        this.subscriptions.get(message.id)?.onNext(message.payload.data);
        break;
      case "error":
        this.subscriptions.delete(message.id);
        this.onState("rejected", message.payload?.[0]?.message ?? "subscription refused");
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      default:
        break;
    }
  }

  closedWith(code) {
    this.acknowledged = false;
    if (this.closed) return;
    if (code === 4403) {
      this.onState("rejected", "the token was not accepted for live updates");
      return;
    }
    this.onState("reconnecting");
    const delay = Math.min(MAX_RECONNECT_DELAY_MS, 500 * 2 ** this.attempts++);
    setTimeout(() => this.connect(), delay);
  }

  sendSubscribe(id) {
    const { query, variables } = this.subscriptions.get(id);
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
