// Binary websocket frames (docs/websocket-frames.md): a 40-byte little-endian
// header, then packed records (events: 13 bytes, spikes: 12 bytes).

export const HEADER_BYTES = 40;
export const KIND_EVENTS = 1;
export const KIND_SPIKES = 2;
export const FLAG_DECIMATED = 1;
const RECORD_BYTES = { [KIND_EVENTS]: 13, [KIND_SPIKES]: 12 };
const MAGIC = [0x53, 0x47, 0x57, 0x46]; // "SGWF"

/** Decode one frame (an ArrayBuffer); throws Error naming the byte offset if malformed. */
export function decodeFrame(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < HEADER_BYTES) {
    throw new Error(`byte ${buffer.byteLength}: frame shorter than the header`);
  }
  for (let i = 0; i < 4; i++) {
    if (view.getUint8(i) !== MAGIC[i]) throw new Error("byte 0: bad magic");
  }
  if (view.getUint8(4) !== 1) throw new Error("byte 4: unknown version");
  const kind = view.getUint8(5);
  const size = RECORD_BYTES[kind];
  if (size === undefined) throw new Error(`byte 5: unknown kind ${kind}`);
  const count = view.getUint32(8, true);
  if (HEADER_BYTES + count * size !== buffer.byteLength) {
    throw new Error(`byte 8: count ${count} does not match the frame length`);
  }
  return {
    kind,
    count,
    view,
    flags: view.getUint16(6, true),
    missed: view.getUint32(12, true),
    seq: Number(view.getBigUint64(16, true)),
    t0Us: Number(view.getBigInt64(24, true)),
    ingressNs: view.getBigInt64(32, true),
  };
}

/** Call fn(x, y, p) for every event of an events frame. */
export function forEachEvent(frame, fn) {
  const v = frame.view;
  for (let i = 0, o = HEADER_BYTES; i < frame.count; i++, o += 13) {
    fn(v.getUint16(o + 8, true), v.getUint16(o + 10, true), v.getUint8(o + 12));
  }
}

/** Call fn(tUs, neuron) for every spike of a spikes frame. */
export function forEachSpike(frame, fn) {
  const v = frame.view;
  for (let i = 0, o = HEADER_BYTES; i < frame.count; i++, o += 12) {
    fn(Number(v.getBigInt64(o, true)), v.getUint32(o + 8, true));
  }
}
