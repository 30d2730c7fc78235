// What every page shares: the API (the cookie the first page set authenticates it) and the class colours.
export async function api(path, options = {}) {
  const response = await fetch(`/api${path}`, { credentials: "same-origin", ...options });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body.error || body || response.statusText);
  return body;
}

const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#9a9a9a", "#66a61e", "#e6ab02", "#a6761d"];
export const colourOf = (classes) => Object.fromEntries(classes.map((c, i) => [c, PALETTE[i % PALETTE.length]]));

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k === "style") Object.assign(node.style, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

export function shareBar(shares, colours) {
  return el("div", { class: "bar" }, ...Object.entries(shares).map(([c, s]) =>
    el("span", { title: `${c} ${(100 * s).toFixed(1)} %`, style: { width: `${100 * s}%`, background: colours[c] || "#ccc" } })));
}
