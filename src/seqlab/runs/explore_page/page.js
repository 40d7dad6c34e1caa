// seqlab explore: the page's script. Everything it shows comes from the data block written by
// seqlab/runs/explore.py; the model's step below is computed from the embedded weights (no network).
"use strict";

const DATA = JSON.parse(document.getElementById("seqlab-data").textContent);
const T = DATA.chars.length;
const V = DATA.vocabulary.length;

// ---------------------------------------------------------------------------------------------------------------
// Matrix-vector products: y (rows) = W (rows x cols, row-major, cols padded to a multiple of 4) . x (cols).
// WebAssembly with 128-bit SIMD where the browser has it, plain JavaScript otherwise (same result up to the
// order of float32 additions). The module is matvec.wasm beside this file (its text form: matvec.wat), inlined
// as base64 by seqlab/runs/explore.py.
const MATVEC_WASM = "/*MATVEC_WASM*/";
function matvecModule() { return Uint8Array.from(atob(MATVEC_WASM), (c) => c.charCodeAt(0)); }

// float32 arrays in one block of memory that both engines read; offsets 16-byte aligned
class Arena {
  constructor(floats) {
    const pages = Math.ceil((floats * 4 + 65536) / 65536);
    this.memory = new WebAssembly.Memory({ initial: pages });
    this.used = 0;
    this.engine = "js";
    this.jsMatvec = (W, x, y, rows, cols) => {
      const w = W.data, xs = x.data, ys = y.data;
      for (let r = 0, o = 0; r < rows; r++) {
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let c = 0; c < cols; c += 4, o += 4) {
          s0 += w[o] * xs[c]; s1 += w[o + 1] * xs[c + 1]; s2 += w[o + 2] * xs[c + 2]; s3 += w[o + 3] * xs[c + 3];
        }
        ys[r] = (s0 + s1) + (s2 + s3);
      }
    };
    this.matvec = this.jsMatvec;
    try {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(matvecModule()), { env: { memory: this.memory } });
      const f = instance.exports.matvec;
      this.wasmMatvec = (W, x, y, rows, cols) => f(W.offset, x.offset, y.offset, rows, cols);
      this.matvec = this.wasmMatvec;
      this.engine = "wasm-simd";
    } catch (e) { /* no WebAssembly SIMD here: plain JavaScript */ }
  }
  alloc(n) {
    const offset = this.used;
    this.used += Math.ceil(n / 4) * 16;
    return { offset, data: new Float32Array(this.memory.buffer, offset, n) };
  }
  use(engine) { this.matvec = engine === "js" ? this.jsMatvec : this.wasmMatvec; this.engine = engine; }
}

function decodeFloats(entry) {
  const bytes = Uint8Array.from(atob(entry.data), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

// ---------------------------------------------------------------------------------------------------------------
// The model's step, as seqlab.streaming.StreamingSampler computes it (the equations of seqlab.cells):
//   layer 0 input  gi = W_ih e(v) + b_ih = input_table[v];  layer k > 0: gi = W_ih h_{k-1} + b_ih
//   RNN   h = tanh(gi + W_hh h + b_hh)
//   LSTM  i, f, g, o = sigma, sigma, tanh, sigma of (gi + W_hh h + b_hh) rows; c = f c + i g; h = o tanh(c)
//   GRU   r, z = sigma(gi + W_hh h + b_hh) rows;  n = tanh(gi_n + r (W_hn h + b_hn))   reset "after"
//                                                 n = tanh(gi_n + W_hn (r h) + b_hn)   reset "before"
//         h = (1 - z) n + z h
//   head  logits = W_out[:, :H] h_L + (W_out[:, H:] e(v) + b_out) = out_h h_L + output_table[v]
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

class Model {
  constructor(cell, weights) {
    const H = cell.hidden, Hp = Math.ceil(H / 4) * 4, G = weights.weight_hh_0.shape[0], L = cell.layers;
    Object.assign(this, { kind: cell.kind, reset: cell.reset, H, Hp, G, L, start: cell.start, names: cell.quantities });
    const raw = {};
    let floats = 0;
    for (const [name, entry] of Object.entries(weights)) { raw[name] = decodeFloats(entry); floats += raw[name].length * 2; }
    this.arena = new Arena(floats + 16 * (G + Hp + V) * (L + 4) + 64);
    const padded = (a, rows, cols) => {  // rows x cols -> rows x Hp, zero columns after cols
      const m = this.arena.alloc(rows * Hp);
      for (let r = 0; r < rows; r++) m.data.set(a.subarray(r * cols, (r + 1) * cols), r * Hp);
      return m;
    };
    const plain = (a) => { const m = this.arena.alloc(a.length); m.data.set(a); return m.data; };
    this.inputTable = plain(raw.input_table);  // (V + 1, G)
    this.outputTable = plain(raw.output_table);  // (V + 1, V)
    this.outH = padded(raw.out_h, V, H);  // (V, Hp)
    this.layers = [];
    for (let k = 0; k < L; k++) {
      this.layers.push({
        Whh: padded(raw[`weight_hh_${k}`], G, H), bhh: plain(raw[`bias_hh_${k}`]),
        Wih: k ? padded(raw[`weight_ih_${k}`], G, H) : null, bih: k ? plain(raw[`bias_ih_${k}`]) : null,
        gi: this.arena.alloc(G), gh: this.arena.alloc(G), h: this.arena.alloc(Hp), c: new Float32Array(H),
        rh: this.arena.alloc(Hp), // GRU reset "before": r * h
        values: Object.fromEntries(cell.quantities.map((q) => [q, new Float32Array(H)])),
      });
    }
    this.logitsBuffer = this.arena.alloc(V);
    this.logits = new Float32Array(V);
    this.resetState();
  }
  resetState() { for (const layer of this.layers) { layer.h.data.fill(0); layer.c.fill(0); } }
  // the next character's logits (V,) after reading v (this.start: the start of the text)
  step(v) {
    const { H, G, arena } = this;
    let below = null;
    for (let k = 0; k < this.L; k++) {
      const layer = this.layers[k], h = layer.h.data, gh = layer.gh.data, val = layer.values;
      let gi;
      if (k === 0) gi = this.inputTable.subarray(v * G, (v + 1) * G);
      else {
        arena.matvec(layer.Wih, below, layer.gi, G, this.Hp);
        gi = layer.gi.data;
        for (let j = 0; j < G; j++) gi[j] += layer.bih[j];
      }
      if (this.kind === "gru" && this.reset === "before") arena.matvec(layer.Whh, layer.h, layer.gh, 2 * H, this.Hp);
      else arena.matvec(layer.Whh, layer.h, layer.gh, G, this.Hp);
      const b = layer.bhh;
      if (this.kind === "lstm") {
        const c = layer.c;
        for (let j = 0; j < H; j++) {
          const i = sigmoid(gi[j] + gh[j] + b[j]), f = sigmoid(gi[H + j] + gh[H + j] + b[H + j]);
          const g = Math.tanh(gi[2 * H + j] + gh[2 * H + j] + b[2 * H + j]);
          const o = sigmoid(gi[3 * H + j] + gh[3 * H + j] + b[3 * H + j]);
          c[j] = f * c[j] + i * g;
          h[j] = o * Math.tanh(c[j]);
          val.i[j] = i; val.f[j] = f; val.g[j] = g; val.o[j] = o; val.c[j] = c[j]; val.h[j] = h[j];
        }
      } else if (this.kind === "gru") {
        const r = val.r, z = val.z, n = val.n;
        for (let j = 0; j < H; j++) {
          r[j] = sigmoid(gi[j] + gh[j] + b[j]);
          z[j] = sigmoid(gi[H + j] + gh[H + j] + b[H + j]);
        }
        if (this.reset === "after") {
          for (let j = 0; j < H; j++) n[j] = Math.tanh(gi[2 * H + j] + r[j] * (gh[2 * H + j] + b[2 * H + j]));
        } else {
          const rh = layer.rh.data;
          for (let j = 0; j < H; j++) rh[j] = r[j] * h[j];
          const Whn = { offset: layer.Whh.offset + 2 * H * this.Hp * 4, data: layer.Whh.data.subarray(2 * H * this.Hp) };
          const out = { offset: layer.gh.offset + 2 * H * 4, data: gh.subarray(2 * H) };
          arena.matvec(Whn, layer.rh, out, H, this.Hp);
          for (let j = 0; j < H; j++) n[j] = Math.tanh(gi[2 * H + j] + gh[2 * H + j] + b[2 * H + j]);
        }
        for (let j = 0; j < H; j++) { h[j] = (1 - z[j]) * n[j] + z[j] * h[j]; val.h[j] = h[j]; }
      } else {
        for (let j = 0; j < H; j++) { h[j] = Math.tanh(gi[j] + gh[j] + b[j]); val.h[j] = h[j]; }
      }
      below = layer.h;
    }
    arena.matvec(this.outH, below, this.logitsBuffer, V, this.Hp);
    const table = this.outputTable, base = v * V, out = this.logits, lb = this.logitsBuffer.data;
    for (let j = 0; j < V; j++) out[j] = lb[j] + table[base + j];
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing a character: softmax(logits / temperature), top-k restricted, the unknown symbol never drawn.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function draw(logits, temperature, topK, random) {
  let best = -1;
  for (let j = 0; j < V; j++) if (j !== DATA.unknown_id && (best < 0 || logits[j] > logits[best])) best = j;
  if (topK === 1) return best;  // greedy: the largest logit
  let kth = -Infinity;
  if (topK > 1 && topK < V) kth = Array.from(logits).filter((_, j) => j !== DATA.unknown_id).sort((a, b) => b - a)[topK - 1];
  const p = new Float64Array(V);
  let total = 0;
  for (let j = 0; j < V; j++) {
    if (j === DATA.unknown_id || logits[j] < kth) continue;
    p[j] = Math.exp((logits[j] - logits[best]) / temperature);
    total += p[j];
  }
  let u = random() * total;
  for (let j = 0; j < V; j++) { u -= p[j]; if (u < 0 && p[j] > 0) return j; }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// Colour scales (each drawn as a legend above the text)
function mix(stops, t) {
  t = Math.min(1, Math.max(0, t));
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const [a, b] = [stops[i], stops[i + 1]];
  return `rgb(${Math.round(a[0] + f * (b[0] - a[0]))},${Math.round(a[1] + f * (b[1] - a[1]))},${Math.round(a[2] + f * (b[2] - a[2]))})`;
}
const SEQUENTIAL = [[255, 255, 255], [254, 224, 139], [244, 109, 67], [165, 0, 38]];
const GATE = [[255, 255, 255], [198, 219, 239], [66, 146, 198], [8, 48, 107]];
const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
const BETTER_WORSE = [[197, 27, 125], [241, 182, 218], [247, 247, 247], [184, 225, 134], [77, 146, 33]];
const MAX_BITS = 8, MAX_DIFF = 4;

// ---------------------------------------------------------------------------------------------------------------
// The page
const $ = (id) => document.getElementById(id);
const state = { view: "surprise", selected: 0, layer: 0, quantity: null, unit: 0, feature: null, ready: false, trace: null, shown: null };
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const show = (ch) => (ch === "\n" ? "\u21b5" : ch === " " ? "\u2423" : ch === "\t" ? "\u21e5" : ch === "\ufffd" ? "\ufffd (unknown)" : ch);
const model = DATA.weights ? new Model(DATA.cell, DATA.weights) : null;
const spans = [];
const VIEWS = [["surprise", "Surprise"], ["units", "Units"], ["saturation", "Saturation"], ["against", "Against"], ["sampler", "Sampler"]];
const meanBits = DATA.bits.reduce((a, b) => a + b, 0) / T;

function buildText() {
  const box = $("text"), frag = document.createDocumentFragment();
  DATA.chars.forEach((ch, s) => {
    const span = document.createElement("span");
    span.dataset.i = s;
    if (ch === "\n") { span.textContent = "\u21b5"; span.className = "nl"; frag.append(span, "\n"); }
    else { span.textContent = ch; frag.append(span); }
    spans.push(span);
  });
  box.append(frag);
  box.addEventListener("mouseover", (e) => { const i = e.target.dataset && e.target.dataset.i; if (i !== undefined) describeChar(+i); });
  box.addEventListener("mouseleave", () => describeChar(state.selected));
  box.addEventListener("click", (e) => { const i = e.target.dataset && e.target.dataset.i; if (i !== undefined) select(+i); });
}

function legend(label, stops, left, middle, right) {
  const gradient = stops.map((_, i) => `${mix(stops, i / (stops.length - 1))} ${(100 * i) / (stops.length - 1)}%`).join(",");
  $("legend").innerHTML = `<span>${label}</span><span>${left}</span><span class="ramp" style="background:linear-gradient(to right,${gradient})"></span>` +
    `<span>${right}</span>${middle ? `<span>(${middle})</span>` : ""}`;
}

function colourText() {
  let colour;
  if (state.view === "against" && DATA.against) {
    legend("bits of the other model minus this one's:", BETTER_WORSE, `&minus;${MAX_DIFF} (this model worse)`, "white: equal", `+${MAX_DIFF} (this model better)`);
    colour = (s) => mix(BETTER_WORSE, 0.5 + (DATA.against.bits[s] - DATA.bits[s]) / (2 * MAX_DIFF));
    state.shown = DATA.bits.map((b, s) => DATA.against.bits[s] - b);
  } else if (state.view === "units" && state.trace) {
    const values = unitValues(state.layer, state.quantity, state.unit);
    const q = state.quantity, gate = (DATA.cell.gates || []).includes(q);
    let scale = 1;
    if (q === "c") scale = Math.max(1e-6, ...values.map(Math.abs));
    if (gate) {
      legend(`${q} (layer ${state.layer}, unit ${state.unit}):`, GATE, "0 (closed)", "", "1 (open)");
      colour = (s) => mix(GATE, values[s]);
    } else {
      legend(`${q} (layer ${state.layer}, unit ${state.unit}):`, DIVERGING, `&minus;${fmt(scale)}`, "white: 0", `+${fmt(scale)}`);
      colour = (s) => mix(DIVERGING, 0.5 + values[s] / (2 * scale));
    }
    state.shown = values;
  } else {
    legend("bits per character, &minus;log<sub>2</sub> P(x | before):", SEQUENTIAL, "0", `mean ${meanBits.toFixed(3)}`, `${MAX_BITS}+`);
    colour = (s) => mix(SEQUENTIAL, DATA.bits[s] / MAX_BITS);
    state.shown = DATA.bits.slice();
  }
  for (let s = 0; s < T; s++) {
    const c = colour(s), [r, g, b] = c.slice(4, -1).split(",").map(Number);
    spans[s].style.backgroundColor = c;
    spans[s].style.color = 0.299 * r + 0.587 * g + 0.114 * b < 110 ? "#fff" : "";  // readable on dark colours
  }
}
const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3));

function unitValues(layer, quantity, unit) {
  const a = state.trace[layer][quantity], H = DATA.cell.hidden, out = new Array(T);
  for (let s = 0; s < T; s++) out[s] = a[s * H + unit];
  return out;
}

function describeChar(s) {
  const ch = DATA.chars[s], bits = DATA.bits[s];
  const before = DATA.chars.slice(Math.max(0, s - 24), s).join("");
  let html = `<h2>Character ${s + 1} of ${T}</h2><div><span class="big">${esc(show(ch))}</span> after <span class="mono">\u201c${esc(before.replace(/\n/g, "\u21b5"))}\u201d</span></div>`;
  html += `<div>P = <b>${Math.pow(2, -bits).toPrecision(4)}</b>, <b>${bits.toFixed(3)}</b> bits</div>`;
  if (DATA.against) {
    const d = DATA.against.bits[s] - bits;
    html += `<div>other model: ${DATA.against.bits[s].toFixed(3)} bits (${d >= 0 ? "this model better by " : "this model worse by "}${Math.abs(d).toFixed(3)})</div>`;
  }
  if (state.view === "units" && state.shown && state.trace) html += `<div>${state.quantity} of unit ${state.unit}: <b>${fmt(state.shown[s])}</b></div>`;
  html += `<h2>Top 10 before it</h2><table id="top10"><tbody>`;
  const ids = DATA.top_ids[s], ps = DATA.top_p[s], own = DATA.vocabulary.indexOf(ch);
  ids.forEach((id, j) => {
    html += `<tr class="${id === own ? "own" : ""}"><td class="mono">${esc(show(DATA.vocabulary[id]))}</td><td class="num">${ps[j].toFixed(4)}</td>` +
      `<td><span class="bar" style="width:${Math.round(ps[j] * 120)}px"></span></td></tr>`;
  });
  html += "</tbody></table>";
  $("char-box").innerHTML = html;
}

function select(s) {
  s = Math.max(0, Math.min(T - 1, s));
  spans[state.selected].classList.remove("selected");
  state.selected = s;
  spans[s].classList.add("selected");
  spans[s].scrollIntoView({ block: "nearest" });
  describeChar(s);
}

function setView(view) {
  const available = DATA.views.includes(view);
  if (!available) return;
  state.view = view;
  document.querySelectorAll("nav button").forEach((b) => b.setAttribute("aria-selected", b.dataset.view === view));
  const textual = ["surprise", "units", "against"].includes(view);
  $("reader").hidden = $("side").hidden = !textual;
  $("main").className = textual ? "" : "wide";
  $("units-box").hidden = view !== "units";
  $("against-box").hidden = view !== "against";
  $("saturation").hidden = view !== "saturation";
  $("sampler").hidden = view !== "sampler";
  if (view === "saturation") drawScatters();
  if (textual) { colourText(); describeChar(state.selected); }
}

function buildTabs() {
  VIEWS.forEach(([view, label], i) => {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.view = view; b.setAttribute("role", "tab");
    b.textContent = `${i + 1} ${label}`;
    b.disabled = !DATA.views.includes(view);
    if (b.disabled) b.title = view === "against" ? "give --against DIR2 to compare with another model" : "this view is for recurrent models";
    b.addEventListener("click", () => setView(view));
    $("tabs").append(b);
  });
}

// -- units ------------------------------------------------------------------------------------------------------
function buildUnits() {
  const cell = DATA.cell;
  for (let k = 0; k < cell.layers; k++) $("layer").add(new Option(`${k}`, k));
  cell.quantities.forEach((q) => $("quantity").add(new Option(q, q)));
  state.quantity = cell.quantities.includes("c") ? "c" : "h";
  $("quantity").value = state.quantity;
  $("unit").max = cell.hidden - 1;
  $("layer").addEventListener("change", () => selectUnit(+$("layer").value, state.quantity, state.unit));
  $("quantity").addEventListener("change", () => selectUnit(state.layer, $("quantity").value, state.unit));
  $("unit").addEventListener("change", () => selectUnit(state.layer, state.quantity, +$("unit").value));
  Object.keys(DATA.units.ranked).forEach((f) => $("feature").add(new Option(f, f)));
  state.feature = Object.keys(DATA.units.ranked)[0];
  $("feature").addEventListener("change", () => { state.feature = $("feature").value; rankedTable(); });
  rankedTable();
}

function rankedTable() {
  const body = $("ranked").tBodies[0];
  body.innerHTML = "";
  (DATA.units.ranked[state.feature] || []).forEach((row) => {
    const tr = body.insertRow();
    tr.innerHTML = `<td>${row.layer}</td><td>${row.quantity}</td><td>${row.unit}</td><td class="num">${row.r.toFixed(3)}</td>`;
    if (row.layer === state.layer && row.quantity === state.quantity && row.unit === state.unit) tr.className = "current";
    tr.addEventListener("click", () => selectUnit(row.layer, row.quantity, row.unit));
  });
}

function selectUnit(layer, quantity, unit) {
  const H = DATA.cell.hidden;
  state.layer = layer; state.quantity = quantity; state.unit = ((unit % H) + H) % H;
  $("layer").value = layer; $("quantity").value = quantity; $("unit").value = state.unit;
  const rows = [];
  for (const [feature, list] of Object.entries(DATA.units.ranked)) {
    for (const row of list) if (row.layer === layer && row.quantity === quantity && row.unit === state.unit) rows.push(`${feature} r = ${row.r.toFixed(3)}`);
  }
  const sat = DATA.units.saturation[`${layer}:${quantity}`];
  let text = rows.length ? `Tracks: ${rows.join("; ")}.` : "Not among the best units for any feature.";
  if (sat) text += ` Saturated left ${(100 * sat.left[state.unit]).toFixed(1)}%, right ${(100 * sat.right[state.unit]).toFixed(1)}% of characters.`;
  $("unit-summary").textContent = text;
  rankedTable();
  if (state.view !== "units") setView("units"); else { colourText(); describeChar(state.selected); }
}

// -- saturation -------------------------------------------------------------------------------------------------
const SCATTER = 300, PAD = 34;
function drawScatters() {
  const box = $("scatters");
  box.innerHTML = "";
  document.querySelectorAll(".closed").forEach((e) => (e.textContent = DATA.units.closed));
  document.querySelectorAll(".open").forEach((e) => (e.textContent = DATA.units.open));
  const NAMES = { i: "input gate i", f: "forget gate f", o: "output gate o", r: "reset gate r", z: "update gate z" };
  for (const [key, sat] of Object.entries(DATA.units.saturation)) {
    const [layer, gate] = key.split(":");
    const fig = document.createElement("figure"), canvas = document.createElement("canvas"), cap = document.createElement("figcaption");
    fig.className = "scatter";
    cap.textContent = `layer ${layer}: ${NAMES[gate]}`;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = (SCATTER + PAD) * ratio; canvas.height = (SCATTER + PAD) * ratio;
    canvas.style.width = `${SCATTER + PAD}px`; canvas.style.height = `${SCATTER + PAD}px`;
    canvas.dataset.key = key;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const X = (v) => PAD + v * (SCATTER - 8), Y = (v) => SCATTER - v * (SCATTER - 8);
    ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(PAD, 0); ctx.lineTo(PAD, SCATTER); ctx.lineTo(PAD + SCATTER, SCATTER); ctx.stroke();
    ctx.strokeStyle = "#ddd"; ctx.beginPath(); ctx.moveTo(X(0), Y(1)); ctx.lineTo(X(1), Y(0)); ctx.stroke();
    ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
    ctx.fillText("0", PAD - 10, SCATTER + 12); ctx.fillText("1", X(1) - 3, SCATTER + 12); ctx.fillText("1", PAD - 10, Y(1) + 4);
    ctx.fillText(`fraction < ${DATA.units.closed} (left-saturated)`, PAD + 20, SCATTER + 26);
    ctx.save(); ctx.translate(12, SCATTER - 30); ctx.rotate(-Math.PI / 2); ctx.fillText(`fraction > ${DATA.units.open} (right-saturated)`, 0, 0); ctx.restore();
    sat.left.forEach((l, u) => {
      const current = +layer === state.layer && gate === state.quantity && u === state.unit;
      if (current) return;
      ctx.fillStyle = "rgba(40, 90, 160, 0.45)"; ctx.beginPath(); ctx.arc(X(l), Y(sat.right[u]), 2.5, 0, 2 * Math.PI); ctx.fill();
    });
    if (+layer === state.layer && gate === state.quantity) {
      ctx.fillStyle = "#e66100"; ctx.beginPath(); ctx.arc(X(sat.left[state.unit]), Y(sat.right[state.unit]), 5, 0, 2 * Math.PI); ctx.fill();
    }
    canvas.addEventListener("click", (e) => {
      const rect = canvas.getBoundingClientRect(), px = e.clientX - rect.left, py = e.clientY - rect.top;
      let best = -1, bestD = 100;
      sat.left.forEach((l, u) => { const d = Math.hypot(X(l) - px, Y(sat.right[u]) - py); if (d < bestD) { bestD = d; best = u; } });
      if (best >= 0 && bestD < 12) selectUnit(+layer, gate, best);
    });
    fig.append(canvas, cap);
    box.append(fig);
  }
}

// -- against ----------------------------------------------------------------------------------------------------
function buildAgainst() {
  const a = DATA.against, n = T;
  const other = a.bits.reduce((x, y) => x + y, 0) / n;
  let better = 0;
  const diffs = a.bits.map((b, s) => { if (b > DATA.bits[s]) better++; return [b - DATA.bits[s], s]; });
  diffs.sort((x, y) => y[0] - x[0]);
  const item = ([d, s]) => `<li><a href="#" data-i="${s}">${esc(DATA.chars.slice(Math.max(0, s - 12), s).join("").replace(/\n/g, "\u21b5"))}<b>${esc(show(DATA.chars[s]))}</b></a> ${d >= 0 ? "+" : ""}${d.toFixed(2)}</li>`;
  $("against-box").innerHTML = `<h2>Against ${esc(a.model)}</h2>` +
    `<div>this model ${meanBits.toFixed(3)} bits/char, the other ${other.toFixed(3)}; this model is better on ${(100 * better / n).toFixed(1)}% of characters.</div>` +
    `<h2>Where this model helps most</h2><ol class="mono">${diffs.slice(0, 8).map(item).join("")}</ol>` +
    `<h2>Where it loses most</h2><ol class="mono">${diffs.slice(-8).reverse().map(item).join("")}</ol>`;
  $("against-box").addEventListener("click", (e) => { const i = e.target.closest("a"); if (i) { e.preventDefault(); select(+i.dataset.i); } });
}

// -- sampler ----------------------------------------------------------------------------------------------------
function encodePrompt(text) { return Array.from(text, (ch) => { const i = DATA.vocabulary.indexOf(ch); return i < 0 ? DATA.unknown_id : i; }); }
// logits after the start and each id of the prompt: (1 + P) x V, for the tests
function logitsOver(ids) {
  model.resetState();
  const out = [Array.from(model.step(model.start))];
  for (const v of ids) out.push(Array.from(model.step(v)));
  return out;
}
// continue the prompt by n characters; returns the text drawn
function generate(prompt, n, temperature, topK, seed) {
  const random = mulberry32(seed);
  model.resetState();
  let logits = model.step(model.start);
  for (const v of encodePrompt(prompt)) logits = model.step(v);
  let out = "";
  for (let t = 0; t < n; t++) {
    const v = draw(logits, temperature, topK, random);
    out += DATA.vocabulary[v];
    logits = model.step(v);
  }
  return out;
}
let stopRequested = false;
function runSampler() {
  const prompt = $("prompt").value, n = Math.max(1, +$("length").value | 0), temperature = Math.max(0.001, +$("temperature").value);
  const topK = Math.max(0, +$("top-k").value | 0), random = mulberry32(+$("seed").value | 0);
  $("output").textContent = prompt; $("generate").disabled = true; $("stop").disabled = false; stopRequested = false;
  const t0 = performance.now();
  model.resetState();
  let logits = model.step(model.start);
  for (const v of encodePrompt(prompt)) logits = model.step(v);
  let done = 0, busy = 0;
  const chunk = () => {
    const c0 = performance.now();
    let text = "";
    for (let j = 0; j < 100 && done < n; j++, done++) {
      const v = draw(logits, temperature, topK, random);
      text += DATA.vocabulary[v];
      logits = model.step(v);
    }
    busy += performance.now() - c0;
    $("output").textContent += text;
    $("speed").textContent = `${done} characters, ${(done / (busy / 1000)).toFixed(0)} characters/s (${model.arena.engine})`;
    if (done < n && !stopRequested) setTimeout(chunk, 0);
    else { $("generate").disabled = false; $("stop").disabled = true; state.lastSample = { text: $("output").textContent.slice(prompt.length), ms: performance.now() - t0 }; }
  };
  chunk();
}

// -- the trace: every quantity of every unit on every character, computed by the page's step ----------------------
function computeTrace(done) {
  const H = DATA.cell.hidden, ids = encodePrompt(DATA.chars.join(""));
  const trace = Array.from({ length: DATA.cell.layers }, () => Object.fromEntries(DATA.cell.quantities.map((q) => [q, new Float32Array(T * H)])));
  model.resetState();
  model.step(model.start);
  let s = 0;
  const chunk = () => {
    const end = Math.min(T, s + 250);
    for (; s < end; s++) {
      model.step(ids[s]);  // the state after reading character s
      model.layers.forEach((layer, k) => { for (const q of DATA.cell.quantities) trace[k][q].set(layer.values[q], s * H); });
    }
    $("status").textContent = s < T ? `computing the units' values in this page: ${s} of ${T} characters` : "";
    if (s < T) setTimeout(chunk, 0); else done(trace);
  };
  chunk();
}

// -- keys -------------------------------------------------------------------------------------------------------
function lineJump(s, direction) {
  const chars = DATA.chars, col = s - (chars.lastIndexOf("\n", s - 1) + 1);
  if (direction > 0) { const next = chars.indexOf("\n", s); if (next < 0) return s; const end = chars.indexOf("\n", next + 1); return Math.min(next + 1 + col, end < 0 ? T - 1 : end); }
  const start = chars.lastIndexOf("\n", s - 1); if (start < 0) return s;
  const prevStart = chars.lastIndexOf("\n", start - 1) + 1; return Math.min(prevStart + col, start);
}
function onKey(e) {
  if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k >= "1" && k <= "5") setView(VIEWS[+k - 1][0]);
  else if (k === "?") toggleHelp();
  else if (k === "ArrowRight") select(e.shiftKey ? lineJump(state.selected, 1) : state.selected + 1);
  else if (k === "ArrowLeft") select(e.shiftKey ? lineJump(state.selected, -1) : state.selected - 1);
  else if (k === "Home") select(0);
  else if (k === "End") select(T - 1);
  else if ((k === "ArrowDown" || k === "ArrowUp") && DATA.cell && state.trace) selectUnit(state.layer, state.quantity, state.unit + (k === "ArrowDown" ? 1 : -1));
  else return;
  e.preventDefault();
}
function toggleHelp() { const h = $("help"); h.hidden = !h.hidden; $("help-button").setAttribute("aria-expanded", !h.hidden); }

// -- start ------------------------------------------------------------------------------------------------------
function start() {
  document.querySelector("main").id = "main";
  $("model-line").textContent = `${DATA.model} \u00b7 ${DATA.source}: ${T.toLocaleString("en")} characters, ${meanBits.toFixed(3)} bits/char` +
    (model ? ` \u00b7 step in ${model.arena.engine}` : "");
  if (DATA.note) { $("note").hidden = false; $("note").textContent = DATA.note; }
  buildTabs();
  buildText();
  $("help-button").addEventListener("click", toggleHelp);
  document.addEventListener("keydown", onKey);
  if (DATA.against) buildAgainst();
  setView("surprise");
  select(0);
  window.seqlab = {
    data: DATA, state, model, spans, setView, select, selectUnit, unitValues, logitsOver, generate, encodePrompt,
    engine: (name) => { if (name) model.arena.use(name); return model.arena.engine; },
    // n greedy characters after the prompt, timed: characters per second of the step and the draw
    benchmark: (prompt, n) => { const t0 = performance.now(); const text = generate(prompt, n, 1, 1, 0); return { text, seconds: (performance.now() - t0) / 1000 }; },
    ready: false,
  };
  if (model) {
    buildUnits();
    $("prompt").value = DATA.chars.slice(0, 40).join("");
    $("generate").addEventListener("click", runSampler);
    $("generate").disabled = true;  // the page's step is busy with the units' values until they are done
    $("stop").addEventListener("click", () => (stopRequested = true));
    computeTrace((trace) => { state.trace = trace; window.seqlab.ready = true; $("generate").disabled = false; if (state.view === "units") colourText(); });
  } else window.seqlab.ready = true;
}
start();
