// The dashboard: pipelines with their figures and start/stop buttons (REST),
// a live event view per source (/ws/events) and a spike raster (/ws/outputs).
import { decodeFrame, KIND_EVENTS, KIND_SPIKES } from "./frames.js";
import { EventView, Raster } from "./views.js";

const POLL_MS = 1000;
const EVENTS_MAX_RATE = 100000;
const tokenInput = document.getElementById("token");
const message = document.getElementById("message");
const cards = new Map(); // pipeline name -> card

/** What tests and people can read from the console. */
export const stats = { statusPolls: 0, eventFrames: 0, spikeFrames: 0, commands: 0, missed: 0 };
window.spikegateDashboard = stats;

tokenInput.value = sessionStorage.getItem("spikegate-token") || "";
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem("spikegate-token", tokenInput.value.trim());
  for (const card of cards.values()) card.reconnect();
});

function headers() {
  const token = tokenInput.value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function wsUrl(path, params) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const token = tokenInput.value.trim();
  if (token) url.searchParams.set("access_token", token);
  return url;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function fmt(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** One websocket that reconnects (with backoff) while its card wants it. */
class Stream {
  constructor(url, onFrame, onText) {
    this.url = url;
    this.onFrame = onFrame;
    this.onText = onText;
    this.delayMs = 500;
    this.closed = false;
    this.open();
  }

  open() {
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { this.delayMs = 500; };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        this.onText(JSON.parse(ev.data));
        return;
      }
      const frame = decodeFrame(ev.data);
      stats.missed += frame.missed;
      this.onFrame(frame);
    };
    ws.onclose = () => {
      if (this.closed) return;
      setTimeout(() => { if (!this.closed) this.open(); }, this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, 10000);
    };
    this.ws = ws;
  }

  close() {
    this.closed = true;
    this.ws.close();
  }
}

class PipelineCard {
  constructor(status) {
    this.name = status.name;
    this.source = status.source.name;
    const [width, height] = status.source.geometry;
    this.state = el("span", { class: "badge" }, status.state);
    this.start = el("button", { "data-action": "start" }, "Start");
    this.stop = el("button", { "data-action": "stop" }, "Stop");
    this.start.addEventListener("click", () => this.control("start"));
    this.stop.addEventListener("click", () => this.control("stop"));
    const eventsCanvas = el("canvas", { class: "events", "data-source": this.source });
    const rasterCanvas = el("canvas", { class: "raster", "data-pipeline": this.name });
    this.figures = el("table", { class: "figures" });
    this.commands = el("div", { class: "commands" });
    this.node = el("section", { class: "pipeline", "data-pipeline": this.name },
      el("div", { class: "title" }, el("h2", {}, this.name), this.state, this.start, this.stop),
      el("div", { class: "views" },
        el("figure", {}, eventsCanvas,
          el("figcaption", {}, `source ${this.source} · ${width}×${height}`)),
        el("figure", {}, rasterCanvas, el("figcaption", {}, "output spikes"), this.commands),
        this.figures));
    this.eventView = new EventView(eventsCanvas, width, height);
    this.raster = new Raster(rasterCanvas);
    this.update(status);
    this.reconnect();
  }

  reconnect() {
    this.closeStreams();
    this.events = new Stream(
      wsUrl("/ws/events", { source: this.source, max_rate: EVENTS_MAX_RATE }),
      (frame) => {
        if (frame.kind === KIND_EVENTS) { this.eventView.addFrame(frame); stats.eventFrames++; }
      },
      () => {});
    if (this.hasWebsocketSink) {
      this.outputs = new Stream(
        wsUrl("/ws/outputs", { pipeline: this.name, format: "binary" }),
        (frame) => {
          if (frame.kind === KIND_SPIKES) { this.raster.addFrame(frame); stats.spikeFrames++; }
        },
        (msg) => {
          if (msg.type !== "commands") return;
          stats.commands += msg.commands.length;
          this.commands.textContent = msg.commands
            .map((c) => `${c.command} ${typeof c.value === "number" ? c.value.toFixed(2) : ""}`)
            .join(" · ");
        });
    }
  }

  closeStreams() {
    if (this.events) this.events.close();
    if (this.outputs) this.outputs.close();
    this.events = this.outputs = null;
  }

  async control(action) {
    message.textContent = "";
    const resp = await fetch(`/api/v1/pipelines/${encodeURIComponent(this.name)}/${action}`,
      { method: "POST", headers: headers() });
    if (!resp.ok) {
      let error = `HTTP ${resp.status}`;
      try { error = (await resp.json()).error || error; } catch { /* not JSON */ }
      message.textContent = `${action} ${this.name}: ${error}` +
        (resp.status === 401 ? " (enter the API token above)" : "");
      return;
    }
    this.update(await resp.json(), true);
  }

  update(status, partial = false) {
    this.hasWebsocketSink = (status.sinks || []).some((s) => s.kind === "websocket");
    if (status.state) {
      this.state.textContent = status.state;
      this.state.className = `badge ${status.state}`;
      this.start.disabled = status.state === "running";
      this.stop.disabled = status.state !== "running";
    }
    if (partial || !status.core) return;
    const core = status.core;
    const sink = (status.sinks || [])[0];
    const now = performance.now();
    let inRate = status.source.events_per_s;
    if (this.lastPoll && now > this.lastPoll.ms) {  // the page's own rate between two polls
      inRate = (status.source.events - this.lastPoll.events) / ((now - this.lastPoll.ms) / 1000);
    }
    this.lastPoll = { ms: now, events: status.source.events };
    const rows = [
      ["events in / s", fmt(inRate)],
      ["events processed", fmt(core.events)],
      ["output spikes", fmt(core.spikes)],
      ["core latency p50 / p99 µs",
        `${fmt(core.latency_us.p50, 1)} / ${fmt(core.latency_us.p99, 1)}`],
      ["sink latency p50 / p99 µs", sink
        ? `${fmt(sink.latency_us.p50, 1)} / ${fmt(sink.latency_us.p99, 1)}` : "–"],
      ["drops queue / hub / sinks",
        `${fmt(status.drops.queue)} / ${fmt(status.drops.hub)} / ${fmt(status.drops.sinks)}`],
      ["shed", fmt(status.shed ? status.shed.total : null)],
      ["sequence gaps", fmt(core.seq_gaps)],
    ];
    this.figures.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("td", {}, k),
      el("td", {}, v))));
  }

  draw() {
    this.eventView.draw();
    this.raster.draw();
  }
}

async function poll() {
  try {
    const resp = await fetch("/api/v1/status", { headers: headers() });
    if (resp.status === 401) {
      message.textContent = "this server needs the API token to read its status";
      return;
    }
    const status = await resp.json();
    stats.statusPolls++;
    const ready = document.getElementById("ready");
    ready.textContent = status.ready ? "ready" : "starting";
    ready.className = `badge ${status.ready ? "ready" : ""}`;
    const seen = new Set();
    for (const p of status.pipelines) {
      seen.add(p.name);
      let card = cards.get(p.name);
      if (!card) {
        card = new PipelineCard(p);
        cards.set(p.name, card);
        document.getElementById("pipelines").append(card.node);
      } else {
        card.update(p);
      }
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.closeStreams();
        card.node.remove();
        cards.delete(name);
      }
    }
  } catch (err) {
    message.textContent = `status: ${err.message}`;
  }
}

function animate() {
  for (const card of cards.values()) card.draw();
  requestAnimationFrame(animate);
}

poll();
setInterval(poll, POLL_MS);
requestAnimationFrame(animate);
