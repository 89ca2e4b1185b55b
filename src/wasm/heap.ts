// Long-lived blocks (tensors from alloc(), KV caches) inside an engine's linear memory. They sit below the
// per-call arena: [heapBase | long-lived blocks … top | per-call arena …]. Freed blocks go to a first-fit free
// list and merge with their neighbours; a freed block at the top lowers the top, giving the arena room back.

const align16 = (n: number) => Math.ceil(n / 16) * 16;

interface Block {
  offset: number;
  bytes: number;
}

export class Heap {
  /** First byte of the per-call arena. */
  top: number;
  private readonly free: Block[] = [];

  constructor(base: number) {
    this.top = align16(base);
  }

  /** Offset of a block of at least `bytes` bytes; the caller makes sure memory reaches `top` afterwards. */
  allocate(bytes: number): number {
    const size = align16(Math.max(bytes, 16));
    const i = this.free.findIndex((b) => b.bytes >= size);
    if (i >= 0) {
      const block = this.free[i]!;
      const offset = block.offset;
      if (block.bytes === size) this.free.splice(i, 1);
      else {
        block.offset += size;
        block.bytes -= size;
      }
      return offset;
    }
    const offset = this.top;
    this.top += size;
    return offset;
  }

  /** Where `allocate(bytes)` would put the top, without allocating: for checks before anything changes. */
  topAfter(bytes: number): number {
    const size = align16(Math.max(bytes, 16));
    return this.free.some((b) => b.bytes >= size) ? this.top : this.top + size;
  }

  release(offset: number, bytes: number): void {
    const size = align16(Math.max(bytes, 16));
    this.free.push({ offset, bytes: size });
    this.free.sort((a, b) => a.offset - b.offset);
    for (let i = this.free.length - 1; i > 0; i--) {
      const prev = this.free[i - 1]!;
      const cur = this.free[i]!;
      if (prev.offset + prev.bytes === cur.offset) {
        prev.bytes += cur.bytes;
        this.free.splice(i, 1);
      }
    }
    const last = this.free.at(-1);
    if (last !== undefined && last.offset + last.bytes === this.top) {
      this.top = last.offset;
      this.free.pop();
    }
  }
}
