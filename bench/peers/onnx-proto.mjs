// A tiny ONNX protobuf encoder: just enough of ModelProto to build small float32 graphs in JS, no Python,
// no protobuf library. Field numbers follow onnx/onnx.proto (ir_version 8).

const FLOAT = 1;
const INT64 = 7;

class Writer {
  constructor() { this.bytes = []; }
  varint(n) {
    let v = BigInt.asUintN(64, BigInt(n));
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) b |= 0x80;
      this.bytes.push(b);
    } while (v !== 0n);
    return this;
  }
  tag(field, wire) { return this.varint((field << 3) | wire); }
  int(field, n) { return this.tag(field, 0).varint(n); }
  float(field, x) {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    this.tag(field, 5);
    this.bytes.push(...b);
    return this;
  }
  raw(field, bytes) {
    this.tag(field, 2).varint(bytes.length);
    for (let i = 0; i < bytes.length; i++) this.bytes.push(bytes[i]);
    return this;
  }
  str(field, s) { return this.raw(field, new TextEncoder().encode(s)); }
  msg(field, w) { return this.raw(field, w.finish()); }
  finish() { return Uint8Array.from(this.bytes); }
}

/** AttributeProto: numbers become INT (integers) or FLOAT, arrays of integers INTS. */
function attribute(name, value) {
  const w = new Writer().str(1, name);
  if (Array.isArray(value)) {
    for (const x of value) w.int(8, x);
    return w.int(20, 7); // INTS
  }
  if (typeof value === 'object' && value.float !== undefined) return w.float(2, value.float).int(20, 1);
  if (Number.isInteger(value)) return w.int(3, value).int(20, 2); // INT
  return w.float(2, value).int(20, 1); // FLOAT
}

/** NodeProto. `attrs`: { name: number | number[] | { float } } */
export function node(opType, inputs, outputs, attrs = {}, domain = '') {
  const w = new Writer();
  for (const i of inputs) w.str(1, i);
  for (const o of outputs) w.str(2, o);
  w.str(3, `${opType}_${outputs[0]}`).str(4, opType);
  for (const [k, v] of Object.entries(attrs)) w.msg(5, attribute(k, v));
  if (domain) w.str(7, domain);
  return w;
}

/** TensorProto initializer from a Float32Array (or BigInt64Array for int64) with raw_data. */
export function tensor(name, dims, data) {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  w.int(2, data instanceof BigInt64Array ? INT64 : FLOAT).str(8, name);
  return w.raw(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** ValueInfoProto for a float32 tensor of fixed shape. */
export function valueInfo(name, dims) {
  const shape = new Writer();
  for (const d of dims) shape.msg(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, FLOAT).msg(2, shape);
  return new Writer().str(1, name).msg(2, new Writer().msg(1, tensorType));
}

/** Serialised ModelProto. `opsets`: { '': 17, 'com.microsoft': 1 } */
export function model({ nodes, inputs, outputs, initializers = [], opsets = { '': 17 } }) {
  const graph = new Writer();
  for (const n of nodes) graph.msg(1, n);
  graph.str(2, 'g');
  for (const t of initializers) graph.msg(5, t);
  for (const i of inputs) graph.msg(11, i);
  for (const o of outputs) graph.msg(12, o);
  const m = new Writer().int(1, 8).str(2, 'wasm-attention-bench').msg(7, graph);
  for (const [domain, version] of Object.entries(opsets)) m.msg(8, new Writer().str(1, domain).int(2, version));
  return m.finish();
}

export const int64s = (xs) => BigInt64Array.from(xs, BigInt);
