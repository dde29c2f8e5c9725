// The filter code editor of the advanced mode: line numbers, and each error the API's
// `validateFilter` finds shown on its own line as the user types.

import { h } from "./dom.js";
import { VALIDATE_FILTER } from "./queries.js";

const VALIDATE_AFTER_MS = 400;
export const CODE_NOT_SAVED = "The filter code has errors (marked at their lines): nothing was saved.";

/**
 * `context()` gives { interval, symbols } for the dry run. Returns the element, the current
 * code, and `check()`, which resolves to the validation (errors drawn where they belong).
 */
export function codeEditor(api, { id, code, context }) {
  const gutter = h("div", { class: "code-gutter", "aria-hidden": "true" });
  const errors = h("div", { class: "code-errors" });
  const textarea = h("textarea", {
    id, class: "code", spellcheck: "false", autocomplete: "off", "aria-describedby": `${id}-status`,
  });
  textarea.value = code;
  const status = h("p", { class: "code-status", id: `${id}-status`, "aria-live": "polite" });
  const element = h("div", {},
    h("div", { class: "code-editor" }, gutter, h("div", { class: "code-area" }, textarea, errors)),
    status);
  let timer = null;
  let latest = Promise.resolve(null);
  let generation = 0;

  function lineCount() {
    return textarea.value.split("\n").length;
  }

  function drawLines(errorLines = new Set()) {
    textarea.rows = Math.max(4, lineCount() + 1);
    gutter.replaceChildren(...Array.from({ length: lineCount() }, (_, index) =>
      h("div", { class: errorLines.has(index + 1) ? "has-error" : null }, String(index + 1))));
  }

  function draw(validation) {
    const lines = new Set(validation.errors.map((error) => error.line));
    drawLines(lines);
    errors.replaceChildren(...validation.errors.map((error) => h("div", {
      class: "code-error",
      role: "alert",
      dataset: { line: error.line, column: error.column },
      style: `top: calc(.4rem + ${error.line - 1} * var(--code-line))`,
      title: error.message,
    }, `line ${error.line}: ${error.message}`)));
    status.className = `code-status${validation.valid ? " valid" : ""}`;
    status.textContent = validation.valid ? describeValid(validation)
      : `${validation.errors.length} error${validation.errors.length === 1 ? "" : "s"} in the filter code`;
  }

  async function check() {
    clearTimeout(timer);
    const mine = ++generation;
    const { interval, symbols } = context();
    latest = api.request(VALIDATE_FILTER, {
      code: textarea.value, interval, symbols: symbols.length ? symbols : null,
    }).then((data) => {
      if (mine === generation) draw(data.validateFilter);
      return data.validateFilter;
    }, (error) => {
      if (mine === generation) status.textContent = `could not check the code: ${error.message}`;
      return null;
    });
    return latest;
  }

  textarea.addEventListener("input", () => {
    drawLines();
    errors.replaceChildren();
    status.textContent = "checking…";
    clearTimeout(timer);
    timer = setTimeout(check, VALIDATE_AFTER_MS);
  });
  drawLines();
  return { element, value: () => textarea.value, check, pending: () => latest };
}

function describeValid(validation) {
  if (!validation.dryRun) return `valid${validation.dryRunSkipped ? ` (not run: ${validation.dryRunSkipped})` : ""}`;
  return `valid: matches ${validation.matches.length} of ${validation.evaluated} symbols now`
    + (validation.matches.length ? ` (${validation.matches.slice(0, 5).join(", ")})` : "");
}
