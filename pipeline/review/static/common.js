// What every page shares: the header, the API (the cookie the first page set authenticates it), and the way a
// page that cannot load says so. Class colours come from the API (one palette, Python's).
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

document.body.prepend(el("header", {}, el("b", {}, "boulderseg review"), el("a", { href: "/" }, "Videos"),
  el("a", { href: "/report" }, "Competition report"), el("span", { id: "title" })));

// A failed request throws an Error carrying the response's status and body (a 409's "current", say).
export async function api(path, options = {}) {
  const response = await fetch(`/api${path}`, { credentials: "same-origin", ...options });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw Object.assign(new Error(body.error || body || response.statusText), { status: response.status, body });
  return body;
}

// What a page is drawn from: on failure the page says why instead of its content, and goes no further (the
// promise never settles, so the module's top-level await stops there).
export async function load(path, what) {
  try {
    return await api(path);
  } catch (e) {
    document.querySelector("main").replaceChildren(el("p", { class: "error", "data-testid": "error" },
      `Cannot show ${what}: ${e.message}. `, el("a", { href: "/" }, "Back to the videos")));
    return new Promise(() => {});
  }
}

export function shareBar(shares, colours) {
  return el("div", { class: "bar" }, ...Object.entries(shares).map(([c, s]) =>
    el("span", { title: `${c} ${(100 * s).toFixed(1)} %`, style: { width: `${100 * s}%`, background: colours[c] || "#ccc" } })));
}
