// A small Markdown renderer that builds DOM nodes: headings, paragraphs, lists, emphasis,
// code and links (http and https only). It never parses HTML, so a model that answers
// `<img src=x onerror=alert(1)>` shows exactly those characters.

import { h } from "./dom.js";

const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*|__[^_]+__)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[[^\]]+\]\([^)\s]+\))/;

function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** The inline content of `text` as nodes. */
export function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    const found = INLINE.exec(rest);
    if (!found) {
      nodes.push(rest);
      break;
    }
    if (found.index) nodes.push(rest.slice(0, found.index));
    const [token, code, strong, em, link] = found;
    if (code) nodes.push(h("code", {}, code.slice(1, -1)));
    else if (strong) nodes.push(h("strong", {}, inline(strong.slice(2, -2))));
    else if (em) nodes.push(h("em", {}, inline(em.slice(1, -1))));
    else if (link) {
      const close = link.indexOf("](");
      const label = link.slice(1, close);
      const href = safeHref(link.slice(close + 2, -1));
      nodes.push(href ? h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, inline(label)) : token);
    }
    rest = rest.slice(found.index + token.length);
  }
  return nodes;
}

const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const FENCE = /^\s*```/;

/** `text` as a fragment of block elements; headings start at h3, under the page's own. */
export function render(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text || "").split(/\r\n|\r|\n/);
  let paragraph = [];
  let list = null;

  function flush() {
    if (paragraph.length) fragment.append(h("p", {}, inline(paragraph.join(" "))));
    paragraph = [];
    list = null;
  }

  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (FENCE.test(line)) {
      flush();
      const code = [];
      for (i += 1; i < lines.length && !FENCE.test(lines[i]); i += 1) code.push(lines[i]);
      fragment.append(h("pre", {}, h("code", {}, code.join("\n"))));
      continue;
    }
    const heading = HEADING.exec(line);
    const bullet = BULLET.exec(line);
    const numbered = bullet ? null : NUMBERED.exec(line);
    if (heading) {
      flush();
      fragment.append(h(`h${Math.min(6, heading[1].length + 2)}`, {}, inline(heading[2])));
    } else if (bullet || numbered) {
      const tag = bullet ? "ul" : "ol";
      if (paragraph.length) flush();
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = h(tag, {});
        fragment.append(list);
      }
      list.append(h("li", {}, inline((bullet || numbered)[1])));
    } else if (!line.trim()) {
      flush();
    } else if (list && /^\s+/.test(line)) {
      list.lastChild.append(" ", ...inline(line.trim()));
    } else {
      list = null;
      paragraph.push(line.trim());
    }
  }
  flush();
  return fragment;
}
