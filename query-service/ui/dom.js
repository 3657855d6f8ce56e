// Building DOM nodes without HTML strings: every value from the API goes in
// as text (textContent / attributes), never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Creates an element. `props` sets attributes (`class`, `href`, `aria-*`, ...)
 * and, for keys starting with "on", event listeners; `children` are nodes or
 * strings (added as text nodes), null/undefined/false are skipped.
 */
export function el(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** The same for SVG elements. */
export function svg(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill(node, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      node.textContent = String(value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** "1 event", "2 events": `n` and the plural `word`, made singular for one. */
export function plural(n, word) {
  return `${n} ${n === 1 ? word.replace(/s$/, "") : word}`;
}

/** Replaces the children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Says `message` in the status line (announced to screen readers). */
export function status(message) {
  const line = document.getElementById("status");
  if (line) line.textContent = message;
}

/** A short error box for a failed request. */
export function errorBox(error) {
  return el("p", { class: "error", role: "alert" }, error.message || String(error));
}

/** Copies `text` to the clipboard; true when it worked. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
