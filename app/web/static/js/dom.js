// Building the page's elements and formatting its numbers; text always goes in as text,
// never as HTML, so nothing a trader, a model or an exchange wrote can run in the page.

/** An element: `h("button", { class: "x", onclick }, "text", child)`. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...present(children));
  return element;
}

/** Replace an element's children, skipping the absent (null) ones. */
export function replace(element, ...children) {
  element.replaceChildren(...present(children));
}

function present(children) {
  return children.flat().filter((child) => child !== null && child !== undefined);
}

/** A definition list of [label, value] pairs, skipping the empty values. */
export function facts(pairs, className = "facts") {
  return h("dl", { class: className },
    pairs.filter(([, value]) => value !== null && value !== undefined && value !== "")
      .flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

/** A profit or loss: signed, "+12.30" or "-4.00". */
export function money(value) {
  if (value === null || value === undefined) return "—";
  return `${Number(value) > 0 ? "+" : ""}${amount(value)}`;
}

/** A sum of money without a sign: equity, fees. */
export function amount(value) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: 2, minimumFractionDigits: 2 });
}

export function price(value) {
  if (value === null || value === undefined) return "—";
  const number = Number(value);
  return number.toLocaleString(undefined, { maximumSignificantDigits: 6 });
}

export function percent(value) {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toLocaleString(undefined, { maximumFractionDigits: 1 })}%`;
}

export function signClass(value) {
  const number = Number(value ?? 0);
  return number > 0 ? "up" : number < 0 ? "down" : "";
}

export function time(value) {
  if (!value) return "—";
  return new Date(value).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

export function label(enumValue) {
  return enumValue ? enumValue.toLowerCase().replaceAll("_", " ") : "—";
}

export function pill(enumValue) {
  return h("span", { class: `pill ${(enumValue ?? "").toLowerCase()}` }, label(enumValue));
}

let toastTimer = null;

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

/** Ask before something permanent; resolves true only on the confirm button. */
export function confirmAction(text, action) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-button").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}
