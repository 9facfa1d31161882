// Canvas views: the live event view (ON/OFF with fading) and the spike raster.
import { forEachEvent, forEachSpike } from "./frames.js";

const BACKGROUND = [0, 0, 0];
const ON = [255, 176, 0];
const OFF = [61, 139, 255];
const FADE = 0.82; // brightness kept per animation frame

/** A source's events drawn at their pixels, fading out over a few frames. */
export class EventView {
  constructor(canvas, width, height) {
    this.canvas = canvas;
    this.width = width;
    this.height = height;
    const scale = Math.max(1, Math.floor(320 / Math.max(width, height)));
    canvas.width = width * scale;
    canvas.height = height * scale;
    this.ctx = canvas.getContext("2d");
    this.ctx.imageSmoothingEnabled = false;
    this.offscreen = new OffscreenCanvas(width, height);
    this.octx = this.offscreen.getContext("2d");
    this.image = this.octx.createImageData(width, height);
    this.level = new Float32Array(width * height); // brightness 0..1
    this.polarity = new Uint8Array(width * height);
    this.events = 0;
  }

  addFrame(frame) {
    const w = this.width;
    const h = this.height;
    forEachEvent(frame, (x, y, p) => {
      if (x < w && y < h) {
        const i = y * w + x;
        this.level[i] = 1;
        this.polarity[i] = p;
      }
    });
    this.events += frame.count;
  }

  draw() {
    const px = this.image.data;
    for (let i = 0; i < this.level.length; i++) {
      const a = this.level[i];
      const c = this.polarity[i] ? ON : OFF;
      px[4 * i] = BACKGROUND[0] + (c[0] - BACKGROUND[0]) * a;
      px[4 * i + 1] = BACKGROUND[1] + (c[1] - BACKGROUND[1]) * a;
      px[4 * i + 2] = BACKGROUND[2] + (c[2] - BACKGROUND[2]) * a;
      px[4 * i + 3] = 255;
      this.level[i] = a * FADE;
    }
    this.octx.putImageData(this.image, 0, 0);
    this.ctx.drawImage(this.offscreen, 0, 0, this.canvas.width, this.canvas.height);
  }
}

/** Output spikes: neuron index (rows) over the last windowUs of sensor time. */
export class Raster {
  constructor(canvas, windowUs = 2_000_000, capacity = 20000) {
    this.canvas = canvas;
    canvas.width = 480;
    canvas.height = 200;
    this.ctx = canvas.getContext("2d");
    this.windowUs = windowUs;
    this.t = new Float64Array(capacity);
    this.neuron = new Uint32Array(capacity);
    this.n = 0;
    this.head = 0;
    this.tNowUs = 0;
    this.rows = 1;
    this.spikes = 0;
  }

  addFrame(frame) {
    const cap = this.t.length;
    forEachSpike(frame, (tUs, neuron) => {
      this.t[this.head] = tUs;
      this.neuron[this.head] = neuron;
      this.head = (this.head + 1) % cap;
      this.n = Math.min(this.n + 1, cap);
      if (neuron + 1 > this.rows) this.rows = neuron + 1;
    });
    this.spikes += frame.count;
    this.tNowUs = Math.max(this.tNowUs, frame.t0Us);
  }

  draw() {
    const { ctx, canvas } = this;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const t0 = this.tNowUs - this.windowUs;
    const rowH = canvas.height / this.rows;
    ctx.fillStyle = "#e6edf3";
    const cap = this.t.length;
    for (let k = 0; k < this.n; k++) {
      const i = (this.head - 1 - k + cap) % cap;
      if (this.t[i] < t0) break;
      const x = ((this.t[i] - t0) / this.windowUs) * canvas.width;
      ctx.fillRect(x - 1, this.neuron[i] * rowH, 2, Math.max(1, rowH - 0.5));
    }
  }
}
