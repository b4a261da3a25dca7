// stylesearch page: the refinement loop. Plain JS, talks only to this server's /api.
"use strict";

const $ = (sel) => document.querySelector(sel);

// steps[i] = {query: {kind: "item", id, title, image_url} | {kind: "upload", file, url, name},
//             add: [...], remove: [...]}; the last step is the current one.
// method: null asks for the server's default until /api/health has named the methods
const state = { steps: [], method: null, k: 12, seq: 0, suggest: [], active: -1 };

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

function queryImage(query) {
  return el("img", { src: query.kind === "item" ? query.image_url : query.url, alt: "", class: "pix" });
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
  box.append(
    queryImage(q),
    el("div", {},
      el("div", { class: "title", text: q.kind === "item" ? q.title : "Your image" }),
      el("div", { class: "meta", text: q.kind === "item" ? q.id : q.name })));
}

function pickQuery(query) {
  const step = current();
  state.steps.push({ query, add: step ? [...step.add] : [], remove: step ? [...step.remove] : [] });
  refresh();
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
          onclick: () => pickQuery({ kind: "item", id: item.id, title: item.title, image_url: item.image_url }),
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
    state.pending = state.pending || { add: [], remove: [] };
    step = state.pending;
  } else if (!step) {
    state.steps.push({ query: null, add: [], remove: [] });
    step = current();
  }
  step.add = step.add.filter((w) => w !== word);
  step.remove = step.remove.filter((w) => w !== word);
  step[kind].push(word);
  refresh();
}

function removeWord(word) {
  for (const step of [current(), state.pending]) {
    if (!step) continue;
    step.add = step.add.filter((w) => w !== word);
    step.remove = step.remove.filter((w) => w !== word);
  }
  refresh();
  $("#word-input").focus();
}

function words() { return current() || state.pending || { add: [], remove: [] }; }

function renderChips() {
  const { add, remove } = words();
  const chip = (word, kind) => el("li", { class: `chip ${kind}`, dataset: { word, kind } },
    el("span", { text: (kind === "add" ? "+" : "−") + word }),
    el("button", { type: "button", "aria-label": `Remove ${word}`, title: `Remove ${word}`, onclick: () => removeWord(word) }, "×"));
  $("#chips").replaceChildren(...add.map((w) => chip(w, "add")), ...remove.map((w) => chip(w, "remove")));
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
        onclick: () => { state.steps.length = i + 1; refresh(); },
      }, queryImage(step.query),
      el("span", { text: `${i + 1}` }),
      ...step.add.map((w) => el("span", { class: "w-add", text: "+" + w })),
      ...step.remove.map((w) => el("span", { class: "w-remove", text: "−" + w }))));
  }));
  $("#back").disabled = steps.length < 2;
}

function back() {
  if (state.steps.length > 1) { state.steps.pop(); refresh(); }
}

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
  refresh();
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

function renderResults(data) {
  const grid = $("#results");
  if (!data.results.length) {
    grid.replaceChildren(el("p", { class: "empty", text: data.message || "No results." }));
  } else {
    grid.replaceChildren(...data.results.map((r, i) => el("button", {
      type: "button", class: "card result", dataset: { id: r.id },
      "aria-label": `${i + 1}. ${r.title}: use as the next query`,
      onclick: () => pickQuery({ kind: "item", id: r.id, title: r.title, image_url: r.image_url }),
    },
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
        ...r.attributes.slice(0, 4).map((a) => el("span", { text: a.word, title: `p = ${a.p}` })))))));
  }
  const inQuery = new Set([...data.query.add, ...data.query.remove]);
  $("#facets").replaceChildren(...data.facets.map((f) => el("li", {
    class: "facet" + (inQuery.has(f.word) ? " in-query" : ""), dataset: { word: f.word },
  },
  el("span", { class: "word", text: f.word }),
  el("span", { class: "count", text: `${f.count}` , title: `${f.count} of ${data.results.length} results` }),
  el("button", { type: "button", class: "add", "aria-label": `Add ${f.word} as wanted`, title: "wanted", onclick: () => addWord(f.word, "add") }, "+"),
  el("button", { type: "button", class: "remove", "aria-label": `Add ${f.word} as unwanted`, title: "unwanted", onclick: () => addWord(f.word, "remove") }, "−"))));
  const msg = data.message ? ` · ${data.message}` : "";
  $("#status").textContent = `${data.results.length} results · ${data.method} · ${data.took_ms.toFixed(1)} ms${msg}`;
}

async function search() {
  const step = current();
  const grid = $("#results");
  const { add, remove } = words();
  const key = JSON.stringify([step && step.query && (step.query.id || step.query.name), add, remove, state.method, state.k]);
  if (!step || (!step.query && state.method !== "text")) {
    grid.dataset.state = "idle";
    grid.replaceChildren(el("p", { class: "empty", text: "Choose a query image to see results." }));
    $("#facets").replaceChildren();
    $("#status").textContent = "";
    return;
  }
  const seq = ++state.seq;
  grid.dataset.state = "loading";
  let options;
  if (step.query && step.query.kind === "upload") {
    const form = new FormData();
    form.append("image", step.query.file, step.query.name);
    for (const w of add) form.append("add", w);
    for (const w of remove) form.append("remove", w);
    if (state.method) form.append("method", state.method);
    form.append("k", String(state.k));
    options = { method: "POST", body: form };
  } else {
    const body = { add, remove, k: state.k };
    if (state.method) body.method = state.method;
    if (step.query) body.item_id = step.query.id;
    options = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  }
  try {
    const data = await api("/api/search", options);
    if (seq !== state.seq) return;  // a newer search is on its way
    $("#error").hidden = true;
    renderResults(data);
    markIgnored(data.ignored_words);
    grid.dataset.query = step.query && step.query.kind === "item" ? step.query.id : "";
    grid.dataset.words = [...add.map((w) => "+" + w), ...remove.map((w) => "-" + w)].join(" ");
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
  search();
}

// ---------------------------------------------------------------- start

function renderMethods(methods, chosen) {
  // the server's list (GET /api/health), so that the page offers exactly the methods it has
  state.method = chosen;
  $("#method").replaceChildren(...methods.map((m) =>
    el("option", { value: m.name, selected: m.name === chosen }, `${m.name} (${m.label})`)));
}

function start() {
  $("#word-input").addEventListener("keydown", onWordKey);
  $("#word-input").addEventListener("input", () => { clearTimeout(suggestTimer); suggestTimer = setTimeout(suggest, 120); });
  $("#word-input").addEventListener("blur", () => setTimeout(closeSuggestions, 100));
  $("#method").addEventListener("change", (ev) => { state.method = ev.target.value; refresh(); });
  $("#k").addEventListener("change", (ev) => { state.k = Number(ev.target.value); refresh(); });
  $("#shuffle").addEventListener("click", loadRandom);
  $("#back").addEventListener("click", back);
  $("#upload").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (!file) return;
    pickQuery({ kind: "upload", file, url: URL.createObjectURL(file), name: file.name });
    ev.target.value = "";
  });
  state.k = Number($("#k").value);
  api("/api/health").then((h) => {
    renderMethods(h.methods, h.default_method);
    const s = h.settings;
    $("#catalog-info").textContent = `${h.items.toLocaleString()} items · ${h.vocabulary} words · ${h.backend}`;
    const origin = s.source === "tuned" ? "tuned on validation queries" : s.source === "given" ? "set when the server started" : "defaults";
    $("#settings-info").textContent = `settings (${origin}): combined word weight ${s.word_weight.combined}, cosine power ${s.cosine_power}; arithmetic word weight ${s.word_weight.arithmetic}` + (h.look_dim ? `; look weight ${s.look_weight} (${h.look_kind} look)` : "");
  }).catch(() => {});
  loadRandom();
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
