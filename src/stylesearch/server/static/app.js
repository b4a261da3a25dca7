// stylesearch page: the refinement loop. Plain JS, talks only to this server's /api.
"use strict";

const $ = (sel) => document.querySelector(sel);

// steps[i] = {query: {kind: "item", id, title, image_url} | {kind: "upload", uid, name}
//             | {kind: "missing", name} | null, add: [...], remove: [...], unlike: [ids]};
// the last step is the current one. method: null asks for the server's default until
// /api/health has named the methods. settings: word_weight / cosine_power / look_weight given
// in the URL. The whole state lives in the URL and in history.state (see "history" below).
const DEFAULT_K = 12;
const SETTINGS = ["word_weight", "cosine_power", "look_weight"];
const MAX_UNLIKE = 32;
const state = { steps: [], method: null, k: DEFAULT_K, settings: {}, depth: 0, seq: 0, suggest: [], active: -1 };
// uploaded files of this page's life, by id (history.state holds only the id: a reload loses them)
const uploads = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function current() { return state.steps[state.steps.length - 1] || null; }

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const err = new Error((body && body.detail) || `HTTP ${response.status}`);
    err.body = body || {};
    err.status = response.status;
    throw err;
  }
  return body;
}

// ---------------------------------------------------------------- query image

function itemImage(id) { return `/api/items/${encodeURIComponent(id)}/image`; }

function queryImage(query) {
  if (query.kind === "item") return el("img", { src: query.image_url, alt: "", class: "pix" });
  const upload = query.kind === "upload" ? uploads.get(query.uid) : null;
  if (!upload) return el("span", { class: "pix missing", "aria-hidden": "true", text: "?" });
  return el("img", { src: upload.url, alt: "", class: "pix" });
}

function renderCurrent() {
  const box = $("#current-query");
  const step = current();
  box.replaceChildren();
  if (!step || !step.query) {
    box.dataset.id = "";
    box.append(el("div", { class: "current-empty", text: "No query image yet: choose a catalog item below or upload one." }));
    return;
  }
  const q = step.query;
  box.dataset.id = q.kind === "item" ? q.id : "";
  const title = q.kind === "item" ? q.title : q.kind === "upload" ? "Your image" : "Your image (not kept)";
  box.append(
    queryImage(q),
    el("div", {},
      el("div", { class: "title", text: title }),
      el("div", { class: "meta", text: q.kind === "item" ? q.id : q.name })));
}

function pickQuery(query) {
  const step = current() || state.pending;
  const unlike = step && step.unlike ? step.unlike.filter((id) => id !== query.id) : [];
  state.steps.push({ query, add: step ? [...step.add] : [], remove: step ? [...step.remove] : [], unlike });
  commit();
}

function itemQuery(item) {
  return { kind: "item", id: item.id, title: item.title, image_url: item.image_url };
}

async function loadRandom() {
  const grid = $("#random-items");
  try {
    const data = await api("/api/random-items?n=12");
    grid.replaceChildren(...data.items.map((item) =>
      el("div", { role: "listitem" },
        el("button", {
          type: "button", class: "pick", title: item.title, dataset: { id: item.id },
          "aria-label": `Start from ${item.title}`,
          onclick: () => pickQuery(itemQuery(item)),
        }, el("img", { src: item.image_url, alt: "", class: "pix", loading: "lazy" })))));
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- words

function addWord(raw, polarity) {
  let word = raw.trim().toLowerCase();
  if (!word) return;
  let kind = polarity || document.querySelector('input[name="polarity"]:checked').value;
  if (word.startsWith("-") || word.startsWith("−")) { kind = "remove"; word = word.slice(1); }
  else if (word.startsWith("+")) { kind = "add"; word = word.slice(1); }
  word = word.trim();
  if (!word) return;
  let step = current();
  if (!step && state.method !== "text") {
    state.pending = state.pending || { add: [], remove: [], unlike: [] };
    step = state.pending;
  } else if (!step) {
    state.steps.push({ query: null, add: [], remove: [], unlike: [] });
    step = current();
  }
  step.add = step.add.filter((w) => w !== word);
  step.remove = step.remove.filter((w) => w !== word);
  step[kind].push(word);
  commit();
}

function removeWord(word) {
  for (const step of [current(), state.pending]) {
    if (!step) continue;
    step.add = step.add.filter((w) => w !== word);
    step.remove = step.remove.filter((w) => w !== word);
  }
  commit();
  $("#word-input").focus();
}

function words() { return current() || state.pending || { add: [], remove: [], unlike: [] }; }

function renderChips() {
  const { add, remove } = words();
  const chip = (word, kind) => el("li", { class: `chip ${kind}`, dataset: { word, kind } },
    el("span", { text: (kind === "add" ? "+" : "−") + word }),
    el("button", { type: "button", "aria-label": `Remove ${word}`, title: `Remove ${word}`, onclick: () => removeWord(word) }, "×"));
  $("#chips").replaceChildren(...add.map((w) => chip(w, "add")), ...remove.map((w) => chip(w, "remove")));
  const unlike = words().unlike || [];
  $("#unlike-heading").hidden = !unlike.length;
  $("#unliked").replaceChildren(...unlike.map((id) => el("li", { class: "chip unlike", dataset: { itemId: id } },
    el("img", { src: itemImage(id), alt: "", class: "pix" }),
    el("span", { text: id }),
    el("button", { type: "button", "aria-label": `Undo less like ${id}`, title: "undo", onclick: () => undoUnlike(id) }, "×"))));
}

function lessLike(id) {
  const step = current();
  if (!step || step.unlike.includes(id) || (step.query && step.query.id === id)) return;
  if (step.unlike.length >= MAX_UNLIKE) step.unlike.shift();  // the API takes at most 32
  step.unlike.push(id);
  commit();
  $("#results").focus();
}

function undoUnlike(id) {
  const step = current();
  if (!step) return;
  step.unlike = step.unlike.filter((x) => x !== id);
  commit();
}

// autocomplete (ARIA combobox with a listbox)
let suggestTimer = null;
function closeSuggestions() {
  state.suggest = []; state.active = -1;
  $("#suggestions").hidden = true;
  $("#word-input").setAttribute("aria-expanded", "false");
  $("#word-input").removeAttribute("aria-activedescendant");
}

function renderSuggestions() {
  const list = $("#suggestions");
  if (!state.suggest.length) { closeSuggestions(); return; }
  list.replaceChildren(...state.suggest.map((s, i) => el("li", {
    id: `sugg-${i}`, role: "option", "aria-selected": i === state.active ? "true" : "false",
    onmousedown: (ev) => { ev.preventDefault(); chooseSuggestion(i); },
  }, el("span", { text: s.word }), el("small", { text: String(s.count) }))));
  list.hidden = false;
  $("#word-input").setAttribute("aria-expanded", "true");
  if (state.active >= 0) {
    $("#word-input").setAttribute("aria-activedescendant", `sugg-${state.active}`);
    const node = document.getElementById(`sugg-${state.active}`);
    if (node) node.scrollIntoView({ block: "nearest" });
  } else {
    $("#word-input").removeAttribute("aria-activedescendant");
  }
}

function chooseSuggestion(i) {
  const input = $("#word-input");
  const sign = /^[-−]/.test(input.value.trim()) ? "-" : "";
  addWord(sign + state.suggest[i].word);
  input.value = "";
  closeSuggestions();
}

async function suggest() {
  const raw = $("#word-input").value.trim().replace(/^[-+−]/, "");
  if (!raw) { closeSuggestions(); return; }
  try {
    const data = await api(`/api/vocabulary?limit=8&prefix=${encodeURIComponent(raw.slice(0, 64))}`);
    if ($("#word-input").value.trim().replace(/^[-+−]/, "") !== raw) return;  // stale
    state.suggest = data.words; state.active = -1;
    renderSuggestions();
  } catch (e) { closeSuggestions(); }
}

function onWordKey(ev) {
  const n = state.suggest.length;
  if (ev.key === "ArrowDown" && n) { ev.preventDefault(); state.active = (state.active + 1) % n; renderSuggestions(); }
  else if (ev.key === "ArrowUp" && n) { ev.preventDefault(); state.active = (state.active - 1 + n) % n; renderSuggestions(); }
  else if (ev.key === "Escape") { closeSuggestions(); }
  else if (ev.key === "Enter") {
    ev.preventDefault();
    if (state.active >= 0 && n) { chooseSuggestion(state.active); return; }
    addWord(ev.target.value);
    ev.target.value = "";
    closeSuggestions();
  } else if (ev.key === "Backspace" && !ev.target.value) {
    const { add, remove } = words();
    const last = remove.length ? remove[remove.length - 1] : add[add.length - 1];
    if (last) removeWord(last);
  }
}

// ---------------------------------------------------------------- steps

function renderSteps() {
  const list = $("#steps");
  const steps = state.steps.filter((s) => s.query);
  list.replaceChildren(...state.steps.map((step, i) => {
    if (!step.query) return null;
    const label = step.query.kind === "item" ? step.query.title : "your image";
    const isLast = i === state.steps.length - 1;
    return el("li", {},
      el("button", {
        type: "button", class: "step", dataset: { index: String(i) },
        "aria-current": isLast ? "step" : null,
        "aria-label": `Step ${i + 1}: ${label} ${step.add.map((w) => "+" + w).join(" ")} ${step.remove.map((w) => "−" + w).join(" ")}`,
        onclick: () => { state.steps.length = i + 1; commit(); },
      }, queryImage(step.query),
      el("span", { text: `${i + 1}` }),
      ...step.add.map((w) => el("span", { class: "w-add", text: "+" + w })),
      ...step.remove.map((w) => el("span", { class: "w-remove", text: "−" + w }))));
  }));
  $("#back").disabled = state.depth < 1;
}

// the browser's history holds every refinement: Back walks it like the browser's button
function back() { if (state.depth > 0) history.back(); }

// ---------------------------------------------------------------- search

function showError(err) {
  const box = $("#error");
  box.replaceChildren(el("span", { text: err.message }));
  const closest = err.body && err.body.closest;
  if (closest && closest.length) {
    const bad = err.body.word;
    box.append(el("span", { text: " Did you mean:" }),
      ...closest.map((w) => el("button", {
        type: "button", class: "button secondary",
        onclick: () => { replaceWord(bad, w); },
      }, w)));
  }
  box.hidden = false;
}

function replaceWord(bad, good) {
  const step = words();
  for (const kind of ["add", "remove"]) {
    const i = step[kind].indexOf(String(bad).toLowerCase());
    if (i >= 0) step[kind][i] = good;
  }
  commit();
}

function width(node, pct) {
  node.style.width = `${pct.toFixed(1)}%`;  // CSSOM, allowed by the page's CSP
  return node;
}

function bar(cls, label, value, fraction) {
  const pct = Math.max(0, Math.min(1, fraction)) * 100;
  return [
    el("span", { text: label }),
    el("div", { class: `bar ${cls}`, role: "presentation" }, width(el("i"), pct)),
    el("output", { text: value.toFixed(3) }),
  ];
}

// words the server left out of the ranking as not visual: their chips say so
function markIgnored(ignored) {
  const skip = new Set(ignored || []);
  for (const chip of document.querySelectorAll("#chips .chip")) {
    const off = skip.has(chip.dataset.word);
    chip.classList.toggle("ignored", off);
    chip.title = off ? "not visual: an image cannot show it, so it does not rank the results (filter-hard still filters on it)" : "";
    const note = chip.querySelector(".visually-hidden");
    if (off && !note) chip.querySelector("span").after(el("span", { class: "visually-hidden", text: " (ignored: not visual)" }));
    else if (!off && note) note.remove();
  }
}

function resultCard(r, i) {
  const step = current();
  const isQuery = Boolean(step && step.query && step.query.id === r.id);
  // the card: its main button makes the item the next query ("more like this" does too);
  // "less like this" moves the query away from it (the API's unlike)
  const card = el("article", {
    class: "card result", dataset: { id: r.id, itemId: r.id },
    onclick: (ev) => { if (!ev.target.closest(".actions")) pickQuery(itemQuery(r)); },
  },
  el("button", { type: "button", class: "main", "aria-label": `${i + 1}. ${r.title}: use as the next query` },
    el("div", { class: "thumb" }, el("img", { src: r.image_url, alt: "", class: "pix", loading: "lazy" }),
      el("span", { class: "rank", text: `#${i + 1}` })),
    el("div", { class: "body" },
      el("div", { class: "title", text: r.title }),
      el("div", { class: "id", text: r.id }),
      el("div", { class: "bars" },
        bar("score", "score", r.score, r.score),
        bar("cos", "cos", r.cosine, (1 + r.cosine) / 2),
        bar("attr", "attr", r.attribute_score, r.attribute_score)),
      el("div", { class: "tags", "aria-label": "most probable attributes" },
        ...r.attributes.slice(0, 4).map((a) => el("span", { text: a.word, title: `p = ${a.p}` }))))),
  el("div", { class: "actions" },
    el("button", { type: "button", class: "more", "aria-label": `More like ${r.title}: search from it`, onclick: () => pickQuery(itemQuery(r)) }, "More like this"),
    isQuery ? el("span", { class: "is-query", text: "the query" })
      : el("button", { type: "button", class: "less", "aria-label": `Less like ${r.title}: move the query away from it`, onclick: () => lessLike(r.id) }, "Less like this")));
  return card;
}

function renderFacets(data) {
  const inQuery = new Set([...data.query.add, ...data.query.remove]);
  $("#facets").replaceChildren(...data.facets.map((f) => el("li", {
    class: "facet" + (inQuery.has(f.word) ? " in-query" : ""), dataset: { word: f.word },
  },
  el("span", { class: "word", text: f.word, title: f.synonyms?.length ? `also: ${f.synonyms.join(", ")}` : null },
    f.synonyms?.length ? el("small", { text: ` (also: ${f.synonyms.join(", ")})` }) : null),
  el("span", { class: "count", text: `${f.count}` , title: `${f.count} of ${data.results.length} results` }),
  el("button", { type: "button", class: "add", "aria-label": `Add ${f.word} as wanted`, title: "wanted", onclick: () => addWord(f.word, "add") }, "+"),
  el("button", { type: "button", class: "remove", "aria-label": `Add ${f.word} as unwanted`, title: "unwanted", onclick: () => addWord(f.word, "remove") }, "−"))));
}

function renderResults(data) {
  const grid = $("#results");
  if (!data.results.length) {
    grid.replaceChildren(el("p", { class: "empty", text: data.message || "No results." }));
  } else {
    grid.replaceChildren(...data.results.map(resultCard));
  }
  renderFacets(data);
  const msg = data.message ? ` · ${data.message}` : "";
  $("#status").textContent = `${data.results.length} results · ${data.method} · ${data.took_ms.toFixed(1)} ms${msg}`;
}

function idle(text) {
  const grid = $("#results");
  grid.dataset.state = "idle";
  grid.replaceChildren(el("p", { class: "empty", text }));
  $("#facets").replaceChildren();
  $("#status").textContent = "";
}

function searchOptions(step, add, remove) {
  const unlike = step.unlike || [];
  if (step.query && step.query.kind === "upload") {
    const form = new FormData();
    const upload = uploads.get(step.query.uid);
    form.append("image", upload.file, step.query.name);
    for (const w of add) form.append("add", w);
    for (const w of remove) form.append("remove", w);
    for (const id of unlike) form.append("unlike", id);
    if (state.method) form.append("method", state.method);
    form.append("k", String(state.k));
    for (const [key, value] of Object.entries(state.settings)) form.append(key, String(value));
    return { method: "POST", body: form };
  }
  const body = { add, remove, k: state.k, ...state.settings };
  if (unlike.length) body.unlike = unlike;
  if (state.method) body.method = state.method;
  if (step.query) body.item_id = step.query.id;
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

async function search() {
  const step = current();
  const grid = $("#results");
  const { add, remove } = words();
  const key = JSON.stringify([step && step.query && (step.query.id || step.query.name), add, remove,
    step && step.unlike, state.method, state.k]);
  if (!step || (!step.query && state.method !== "text")) {
    idle("Choose a query image to see results.");
    return;
  }
  if (step.query && (step.query.kind === "missing" || (step.query.kind === "upload" && !uploads.has(step.query.uid)))) {
    ++state.seq;
    idle(`This search used an uploaded image (${step.query.name}). The server keeps no uploads, so it is not in the link: upload it again to see the results.`);
    return;
  }
  const seq = ++state.seq;
  grid.dataset.state = "loading";
  try {
    const data = await api("/api/search", searchOptions(step, add, remove));
    if (seq !== state.seq) return;  // a newer search is on its way
    $("#error").hidden = true;
    renderResults(data);
    markIgnored(data.ignored_words);
    grid.dataset.query = step.query && step.query.kind === "item" ? step.query.id : "";
    grid.dataset.words = [...add.map((w) => "+" + w), ...remove.map((w) => "-" + w)].join(" ");
    grid.dataset.unlike = (step.unlike || []).join(" ");
    grid.dataset.key = key;
    grid.dataset.state = "ready";
  } catch (e) {
    if (seq !== state.seq) return;
    grid.dataset.state = "error";
    showError(e);
  }
}

function refresh() {
  const step = current();
  if (step && state.pending) {
    for (const kind of ["add", "remove"]) {
      for (const w of state.pending[kind]) if (!step.add.includes(w) && !step.remove.includes(w)) step[kind].push(w);
    }
    state.pending = null;
  }
  renderCurrent();
  renderChips();
  renderSteps();
  syncControls();
  search();
}

// ---------------------------------------------------------------- history: the URL holds the state

// /?item=ID&add=red&remove=striped&unlike=ID2&method=combined&k=12 (&upload=NAME for an uploaded
// image, which the server does not keep; &word_weight=&cosine_power=&look_weight= when given)
function stateURL() {
  const step = current();
  const { add, remove } = words();
  const params = new URLSearchParams();
  const q = step && step.query;
  if (q && q.kind === "item") params.set("item", q.id);
  else if (q) params.set("upload", q.name || "image");
  for (const w of add) params.append("add", w);
  for (const w of remove) params.append("remove", w);
  for (const id of (step && step.unlike) || []) params.append("unlike", id);
  if (state.method) params.set("method", state.method);
  params.set("k", String(state.k));
  for (const [key, value] of Object.entries(state.settings)) params.set(key, String(value));
  return "/?" + params.toString();
}

function snapshot() {
  const copy = (step) => step && {
    query: step.query && (step.query.kind === "upload" ? { kind: "upload", uid: step.query.uid, name: step.query.name } : { ...step.query }),
    add: [...step.add], remove: [...step.remove], unlike: [...(step.unlike || [])],
  };
  return { stylesearch: 1, steps: state.steps.map(copy), pending: copy(state.pending), method: state.method,
    k: state.k, settings: { ...state.settings }, depth: state.depth };
}

function restore(saved) {
  state.steps = saved.steps.map((s) => ({ ...s, unlike: s.unlike || [] }));
  state.pending = saved.pending || null;
  state.method = saved.method;
  state.k = saved.k;
  state.settings = saved.settings || {};
  state.depth = saved.depth || 0;
}

// a new refinement: a new history entry, then render and search
function commit() {
  state.depth += 1;
  history.pushState(snapshot(), "", stateURL());
  refresh();
}

function fromURL(search) {
  const params = new URLSearchParams(search);
  const list = (key) => params.getAll(key).map((w) => w.trim().toLowerCase()).filter(Boolean).slice(0, 32);
  const add = list("add");
  const remove = list("remove").filter((w) => !add.includes(w));
  const unlike = [...new Set(params.getAll("unlike").filter(Boolean))].slice(0, MAX_UNLIKE);
  let query = null;
  const item = params.get("item");
  if (item) query = { kind: "item", id: item, title: item, image_url: itemImage(item) };
  else if (params.get("upload")) query = { kind: "missing", name: params.get("upload").slice(0, 200) };
  const method = params.get("method");
  const k = Number(params.get("k"));
  const settings = {};
  for (const key of SETTINGS) {
    const value = Number(params.get(key));
    if (params.get(key) !== null && Number.isFinite(value)) settings[key] = value;
  }
  const step = { query, add, remove, unlike };
  const steps = query || (method === "text" && add.length + remove.length) ? [step] : [];
  return { steps, pending: steps.length ? null : step, method: method || null,
    k: Number.isInteger(k) && k >= 1 && k <= 100 ? k : DEFAULT_K, settings, depth: 0 };
}

// a step restored from a link knows only its item's id: ask for the title
async function fillTitles() {
  for (const step of state.steps) {
    const q = step.query;
    if (q && q.kind === "item" && q.title === q.id) {
      try {
        const item = await api(`/api/items/${encodeURIComponent(q.id)}`);
        q.title = item.title;
      } catch (e) { /* the search reports an unknown item */ }
    }
  }
  renderCurrent();
  renderSteps();
}

function syncControls() {
  const k = $("#k");
  if (![...k.options].some((o) => Number(o.value) === state.k)) k.append(el("option", { value: String(state.k) }, String(state.k)));
  k.value = String(state.k);
  if (state.method && [...$("#method").options].some((o) => o.value === state.method)) $("#method").value = state.method;
}

function onPopState(ev) {
  const saved = ev.state && ev.state.stylesearch ? ev.state : fromURL(location.search);
  restore(saved);
  refresh();
  fillTitles();
}

// ---------------------------------------------------------------- start

function renderMethods(methods, chosen) {
  // the server's list (GET /api/health), so that the page offers exactly the methods it has
  $("#method").replaceChildren(...methods.map((m) =>
    el("option", { value: m.name, selected: m.name === chosen }, `${m.name} (${m.label})`)));
  if (!state.method) {
    state.method = chosen;
    history.replaceState(snapshot(), "", stateURL());
  }
  syncControls();
}

function start() {
  $("#word-input").addEventListener("keydown", onWordKey);
  $("#word-input").addEventListener("input", () => { clearTimeout(suggestTimer); suggestTimer = setTimeout(suggest, 120); });
  $("#word-input").addEventListener("blur", () => setTimeout(closeSuggestions, 100));
  $("#method").addEventListener("change", (ev) => { state.method = ev.target.value; commit(); });
  $("#k").addEventListener("change", (ev) => { state.k = Number(ev.target.value); commit(); });
  $("#shuffle").addEventListener("click", loadRandom);
  $("#back").addEventListener("click", back);
  $("#upload").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (!file) return;
    const uid = `u${uploads.size + 1}-${Date.now()}`;
    uploads.set(uid, { file, url: URL.createObjectURL(file) });
    pickQuery({ kind: "upload", uid, name: file.name });
    ev.target.value = "";
  });
  window.addEventListener("popstate", onPopState);
  // a reload keeps history.state (the refinement trail); a shared link has only its URL
  const saved = history.state && history.state.stylesearch ? history.state : fromURL(location.search);
  restore(saved);
  history.replaceState(snapshot(), "", stateURL());
  api("/api/health").then((h) => {
    renderMethods(h.methods, h.default_method);
    const s = h.settings;
    $("#catalog-info").textContent = `${h.items.toLocaleString()} items · ${h.vocabulary} words · ${h.backend}`;
    const origin = s.source === "tuned" ? "tuned on validation queries" : s.source === "given" ? "set when the server started" : "defaults";
    $("#settings-info").textContent = `settings (${origin}): combined word weight ${s.word_weight.combined}, cosine power ${s.cosine_power}; arithmetic word weight ${s.word_weight.arithmetic}` + (h.look_dim ? `; look weight ${s.look_weight} (${h.look_kind} look)` : "");
  }).catch(() => {});
  loadRandom();
  refresh();
  fillTitles();
}

document.addEventListener("DOMContentLoaded", start);
