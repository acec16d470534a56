// A small Markdown renderer and syntax highlighter that build DOM nodes directly: text is
// only ever set as text, links only keep http(s), mailto and relative targets.
import { h } from "./dom.js";

/** Renders Markdown into a DocumentFragment. */
export function renderMarkdown(source) {
  const out = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)/);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i += 1; // closing fence (or end of a still-streaming block)
      out.append(codeBlock(body.join("\n"), fence[2]));
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      out.append(h(`h${Math.min(heading[1].length + 2, 6)}`, {}, inline(heading[2])));
      i += 1;
      continue;
    }
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = h(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
        list.append(h("li", {}, inline(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""))));
        i += 1;
      }
      out.append(list);
      continue;
    }
    if (isTableStart(lines, i)) {
      const head = cells(line);
      i += 2; // the header and its delimiter row
      const rows = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(cells(lines[i++]));
      out.append(h("table", {},
        h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c))))),
        h("tbody", {}, rows.map((r) => h("tr", {}, head.map((_, k) => h("td", {}, inline(r[k] ?? ""))))))));
      continue;
    }
    if (/^>\s?/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) quoted.push(lines[i++].replace(/^>\s?/, ""));
      out.append(h("blockquote", {}, renderMarkdown(quoted.join("\n"))));
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !isTableStart(lines, i) && !/^(\s*(```|~~~)|#{1,6}\s|>|\s*([-*+]|\d+[.)])\s)/.test(lines[i])) {
      para.push(lines[i++]);
    }
    if (!para.length) para.push(lines[i++]);
    out.append(h("p", {}, inline(para.join("\n"))));
  }
  return out;
}

/** A GitHub-style table starts with a row of cells and a delimiter row such as `|---|:-:|`. */
const TABLE_DELIMITER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function isTableStart(lines, i) {
  return lines[i].includes("|") && i + 1 < lines.length && TABLE_DELIMITER.test(lines[i + 1]) &&
    cells(lines[i]).length === cells(lines[i + 1]).length;
}

/** The cells of a table row: outer pipes dropped, split on pipes not escaped with `\`. */
function cells(row) {
  const inner = row.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "");
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

const INLINE = /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

function inline(text) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(INLINE)) {
    frag.append(document.createTextNode(text.slice(at, m.index)));
    if (m[1]) frag.append(h("code", {}, m[2]));
    else if (m[3] || m[4]) frag.append(h("strong", {}, inline(m[3] || m[4])));
    else if (m[5]) frag.append(h("em", {}, inline(m[5])));
    else if (m[6]) frag.append(safeLink(m[6], m[7]));
    at = m.index + m[0].length;
  }
  frag.append(document.createTextNode(text.slice(at)));
  return frag;
}

function safeLink(label, href) {
  if (!/^(https?:|mailto:|\/|#|\.{0,2}\/?[\w-])/i.test(href) || /^(javascript|data|vbscript):/i.test(href)) {
    return document.createTextNode(label);
  }
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
}

/** A <pre><code> block with highlighted tokens. */
export function codeBlock(code, lang) {
  return h("pre", { class: "code", dataset: { lang: lang || "" } }, h("code", {}, highlight(code, lang)));
}

const KEYWORDS = new Set(("import export from default function return const let var if else for while do " +
  "switch case break continue new class extends super this typeof instanceof in of async await try catch " +
  "finally throw yield true false null undefined void delete fn pub use mod struct enum impl trait let mut " +
  "match where self Self def lambda None True False and or not pass elif with as interface type").split(" "));

const REST = String.raw`|("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|\x60(?:\\.|[^\x60\\])*\x60)|(\b\d[\d_.]*\b)|(<\/?[A-Za-z][\w.-]*)|([A-Za-z_$][\w$]*)`;
const C_TOKEN = new RegExp(String.raw`(\/\/[^\n]*|\/\*[\s\S]*?\*\/|<!--[\s\S]*?-->)` + REST, "g");
const HASH_TOKEN = new RegExp(String.raw`(#[^\n]*)` + REST, "g");

/** Tokens of common languages as spans: comments, strings, numbers, tags, keywords. */
export function highlight(code, lang) {
  const frag = document.createDocumentFragment();
  const hashComments = /^(sh|bash|shell|py|python|toml|yaml|yml|rb)$/.test(lang || "");
  let at = 0;
  for (const m of code.matchAll(hashComments ? HASH_TOKEN : C_TOKEN)) {
    let cls = null;
    if (m[1]) cls = "tok-comment";
    else if (m[2]) cls = "tok-string";
    else if (m[3]) cls = "tok-number";
    else if (m[4]) cls = "tok-tag";
    else if (m[5] && KEYWORDS.has(m[5])) cls = "tok-keyword";
    if (!cls) continue;
    frag.append(document.createTextNode(code.slice(at, m.index)));
    frag.append(h("span", { class: cls }, m[0]));
    at = m.index + m[0].length;
  }
  frag.append(document.createTextNode(code.slice(at)));
  return frag;
}

/** The highlighter's language for a file path. */
export function langOf(path) {
  const ext = (path.match(/\.([\w]+)$/) || [])[1] || "";
  return { js: "js", jsx: "js", ts: "ts", tsx: "ts", mjs: "js", json: "json", css: "css", html: "html", md: "md", sh: "sh", py: "py", rs: "rs", toml: "toml", yml: "yaml", yaml: "yaml" }[ext] || ext;
}
