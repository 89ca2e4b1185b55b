// What a caller's typed array really is, read from its internal slots. A typed array's `length`, `buffer`,
// `byteOffset` and `byteLength` — and its methods — are ordinary properties: an own property or a subclass getter can
// make them say anything, and reading them runs the caller's code. The %TypedArray%.prototype getters below,
// captured once at module load, read the slots instead: they run no user code, allocate nothing, and work on a
// typed array of any realm (an iframe, a vm context, a worker). Every length, buffer, offset and byte length the
// package takes from a caller's array comes from here, and it copies into a caller's array only with the intrinsic
// `set` (which reads a typed-array source through its slots too).

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;

function getter<T>(owner: object, key: PropertyKey): (this: unknown) => T {
  return Object.getOwnPropertyDescriptor(owner, key)!.get as (this: unknown) => T;
}

/**
 * The typed array's kind from its internal slot: the @@toStringTag getter returns 'Float32Array', 'Uint8Array', …
 * for a typed array of any realm and undefined for anything else. Unlike Object.prototype.toString it reads no
 * property of the value (an own or inherited Symbol.toStringTag is not consulted).
 */
const kindGetter = getter<string | undefined>(TypedArrayPrototype, Symbol.toStringTag);
const lengthGetter = getter<number>(TypedArrayPrototype, 'length');
const bufferGetter = getter<ArrayBufferLike>(TypedArrayPrototype, 'buffer');
const byteOffsetGetter = getter<number>(TypedArrayPrototype, 'byteOffset');
const byteLengthGetter = getter<number>(TypedArrayPrototype, 'byteLength');
const arrayBufferByteLength = getter<number>(ArrayBuffer.prototype, 'byteLength');
const setMethod = (TypedArrayPrototype as { set: (this: unknown, source: ArrayLike<number>, offset?: number) => void }).set;

/** 'Float32Array', 'Uint16Array', … for a typed array (any realm), else undefined. Never throws. */
export const typedArrayKind = (x: unknown): string | undefined => kindGetter.call(x);

// The accessors below take a typed array (check its kind first): on anything else they throw a TypeError.

/** Elements of a typed array (0 once its buffer is detached or it is out of bounds of a shrunk buffer). */
export const viewLength = (x: ArrayBufferView): number => lengthGetter.call(x);
/** The ArrayBuffer or SharedArrayBuffer behind a typed array. */
export const viewBuffer = (x: ArrayBufferView): ArrayBufferLike => bufferGetter.call(x);
/** Byte offset of a typed array in its buffer (0 once detached). */
export const viewByteOffset = (x: ArrayBufferView): number => byteOffsetGetter.call(x);
/** Bytes of a typed array (0 once detached). */
export const viewByteLength = (x: ArrayBufferView): number => byteLengthGetter.call(x);

/** True when a typed array's buffer is an ArrayBuffer of 0 bytes: detached (transferred, or wasm memory grew). */
export function isDetachedView(x: ArrayBufferView): boolean {
  const buffer = viewBuffer(x);
  try {
    return arrayBufferByteLength.call(buffer) === 0;
  } catch {
    return false; // a SharedArrayBuffer: never detached
  }
}

/** `target.set(source, offset)` with the intrinsic method: an own or subclass `set` of either array does not run. */
export function setElements(target: ArrayBufferView, source: ArrayLike<number>, offset = 0): void {
  setMethod.call(target, source, offset);
}

/** A Uint8Array over exactly the bytes of a typed array (this realm's, from its real buffer, offset and length). */
export const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(viewBuffer(x), viewByteOffset(x), viewByteLength(x));

/**
 * Engines' memory buffers, each with its engine's check that a view of it lies inside a live tensor (it throws
 * INVALID_TYPE otherwise): options copied by the plans (per-head slopes and sinks, key lengths, RoPE frequencies,
 * linear decay and gates) are checked here like tensors are, so a view of freed or arena memory is refused as any
 * argument. Weak: a buffer that is gone takes its check with it.
 */
const engineBuffers = new WeakMap<ArrayBufferLike, (view: ArrayBufferView, name: string) => void>();

/** Records a buffer object of an engine's memory (wasm/memory.ts, whenever it sees one). */
export function registerEngineBuffer(buffer: ArrayBufferLike, check: (view: ArrayBufferView, name: string) => void): void {
  engineBuffers.set(buffer, check);
}

/** The check an engine registered for a buffer object of its memory (undefined: no engine's). */
export const engineCheckOf = (buffer: ArrayBufferLike): ((view: ArrayBufferView, name: string) => void) | undefined =>
  engineBuffers.get(buffer);

/** Throws INVALID_TYPE when a typed array is a view of an engine's memory outside every live tensor of it. */
export function refuseStaleView(view: ArrayBufferView, name: string): void {
  engineCheckOf(viewBuffer(view))?.(view, name);
}
