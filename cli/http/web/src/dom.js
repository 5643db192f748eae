// The one DOM helper of the pages.

/// A new element: attributes ("class", "text" for its text, "style" as CSS text, others as
/// attributes), then children (nodes or strings).
export function element(tag, attributes = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v; // CSSOM, which the page's CSP allows
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}
