/**
 * Canonical MessagePack (docs/spec/01-encoding.md): one encoder, one strict decoder.
 *
 * General MessagePack libraries sort map keys by UTF-16 code units, write bigints in a
 * fixed 64-bit form and silently accept floats, repeated keys and invalid UTF-8; any of
 * these makes a signature or a hash differ from what nodes compute. So the SDK carries its
 * own small codec whose every rule is the specification's.
 */

export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

export type ValueMap = { [key: string]: Value };

export const INT_MIN = -(2n ** 63n);
export const INT_MAX = 2n ** 63n - 1n;
export const MAX_TX_BYTES = 65536;
const MAX_DEPTH = 512;

/** A refusal with the protocol's code: `malformed`, `non_canonical` or `too_large`. */
export class CodecError extends Error {
  constructor(
    readonly code: "malformed" | "non_canonical" | "too_large",
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "CodecError";
  }
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  uint(value: bigint, width: 1 | 2 | 4 | 8): void {
    for (let i = width - 1; i >= 0; i--) this.byte(Number((value >> BigInt(8 * i)) & 0xffn));
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Bytewise comparison: the order of canonical map keys (their UTF-8 bytes). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function toBigInt(value: number | bigint): bigint {
  if (typeof value === "bigint") return value;
  if (!Number.isSafeInteger(value)) {
    throw new CodecError("malformed", `${value} is not an integer the protocol allows (no floats)`);
  }
  return BigInt(value);
}

function writeInt(w: Writer, value: bigint): void {
  if (value < INT_MIN || value > INT_MAX) {
    throw new CodecError("malformed", `integer ${value} outside the signed 64-bit range`);
  }
  if (value >= 0n) {
    if (value < 128n) w.byte(Number(value));
    else if (value < 0x100n) (w.byte(0xcc), w.uint(value, 1));
    else if (value < 0x10000n) (w.byte(0xcd), w.uint(value, 2));
    else if (value < 0x100000000n) (w.byte(0xce), w.uint(value, 4));
    else (w.byte(0xcf), w.uint(value, 8));
    return;
  }
  if (value >= -32n) w.byte(Number(value & 0xffn));
  else if (value >= -128n) (w.byte(0xd0), w.uint(value & 0xffn, 1));
  else if (value >= -32768n) (w.byte(0xd1), w.uint(value & 0xffffn, 2));
  else if (value >= -2147483648n) (w.byte(0xd2), w.uint(value & 0xffffffffn, 4));
  else (w.byte(0xd3), w.uint(value & 0xffffffffffffffffn, 8));
}

function writeLength(w: Writer, n: number, fix: [number, number] | null, codes: number[]): void {
  if (fix !== null && n < fix[1]) return w.byte(fix[0] | n);
  const [c8, c16, c32] = codes as [number, number, number];
  if (c8 !== 0 && n < 0x100) return (w.byte(c8), w.uint(BigInt(n), 1));
  if (n < 0x10000) return (w.byte(c16), w.uint(BigInt(n), 2));
  w.byte(c32);
  w.uint(BigInt(n), 4);
}

function write(w: Writer, value: Value, depth: number): void {
  if (depth > MAX_DEPTH) throw new CodecError("malformed", "nested too deeply");
  if (value === null) return w.byte(0xc0);
  if (value === true) return w.byte(0xc3);
  if (value === false) return w.byte(0xc2);
  if (typeof value === "number" || typeof value === "bigint") return writeInt(w, toBigInt(value));
  if (typeof value === "string") {
    const data = utf8.encode(value);
    writeLength(w, data.length, [0xa0, 32], [0xd9, 0xda, 0xdb]);
    return w.bytes(data);
  }
  if (value instanceof Uint8Array) {
    writeLength(w, value.length, null, [0xc4, 0xc5, 0xc6]);
    return w.bytes(value);
  }
  if (Array.isArray(value)) {
    writeLength(w, value.length, [0x90, 16], [0, 0xdc, 0xdd]);
    for (const item of value) write(w, item, depth + 1);
    return;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value).map(([k, v]) => [utf8.encode(k), k, v] as const);
    entries.sort((a, b) => compareBytes(a[0], b[0]));
    writeLength(w, entries.length, [0x80, 16], [0, 0xde, 0xdf]);
    for (const [keyBytes, , item] of entries) {
      writeLength(w, keyBytes.length, [0xa0, 32], [0xd9, 0xda, 0xdb]);
      w.bytes(keyBytes);
      if (item === undefined) throw new CodecError("malformed", "undefined is not a protocol value");
      write(w, item, depth + 1);
    }
    return;
  }
  throw new CodecError("malformed", `type ${typeof value} is not allowed in the protocol`);
}

/** The canonical bytes of a protocol value. */
export function encode(value: Value): Uint8Array {
  const w = new Writer();
  write(w, value, 0);
  return w.result();
}

class Reader {
  pos = 0;
  constructor(readonly data: Uint8Array) {}

  need(n: number): void {
    if (this.pos + n > this.data.length) throw new CodecError("malformed", "truncated input");
  }

  byte(): number {
    this.need(1);
    return this.data[this.pos++] as number;
  }

  uint(width: number): bigint {
    this.need(width);
    let v = 0n;
    for (let i = 0; i < width; i++) v = (v << 8n) | BigInt(this.data[this.pos++] as number);
    return v;
  }

  take(n: number): Uint8Array {
    this.need(n);
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function signed(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v);
}

function int(v: bigint): number | bigint {
  if (v > INT_MAX) throw new CodecError("malformed", `integer ${v} outside the signed 64-bit range`);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readStr(r: Reader, n: number): string {
  try {
    return strictUtf8.decode(r.take(n));
  } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError("malformed", "a str is not valid UTF-8");
  }
}

function readArray(r: Reader, n: number, depth: number): Value[] {
  const out: Value[] = [];
  for (let i = 0; i < n; i++) out.push(read(r, depth + 1));
  return out;
}

function readMap(r: Reader, n: number, depth: number): ValueMap {
  const out: ValueMap = Object.create(null) as ValueMap;
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const key = read(r, depth + 1);
    if (typeof key !== "string") throw new CodecError("malformed", "a map key is not a str");
    if (seen.has(key)) throw new CodecError("malformed", `map key ${JSON.stringify(key)} is repeated`);
    seen.add(key);
    out[key] = read(r, depth + 1);
  }
  return out; // null prototype: a key named __proto__ stays an ordinary key
}

function read(r: Reader, depth: number): Value {
  if (depth > MAX_DEPTH) throw new CodecError("malformed", "nested too deeply");
  const b = r.byte();
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  if ((b & 0xe0) === 0xa0) return readStr(r, b & 0x1f);
  if ((b & 0xf0) === 0x90) return readArray(r, b & 0x0f, depth);
  if ((b & 0xf0) === 0x80) return readMap(r, b & 0x0f, depth);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return r.take(Number(r.uint(1 << (b - 0xc4))));
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      return int(r.uint(1 << (b - 0xcc)));
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      const width = 1 << (b - 0xd0);
      return int(signed(r.uint(width), width * 8));
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
      return readStr(r, Number(r.uint(1 << (b - 0xd9))));
    case 0xdc:
    case 0xdd:
      return readArray(r, Number(r.uint(b === 0xdc ? 2 : 4)), depth);
    case 0xde:
    case 0xdf:
      return readMap(r, Number(r.uint(b === 0xde ? 2 : 4)), depth);
    case 0xca:
    case 0xcb:
      throw new CodecError("malformed", "floats are not allowed");
    case 0xc1:
      throw new CodecError("malformed", "byte 0xc1 is never used");
    default:
      throw new CodecError("malformed", `ext type (0x${b.toString(16)}) is not allowed`);
  }
}

/** Strictly decode exactly one canonical object, or throw CodecError with the spec's code. */
export function decode(data: Uint8Array, maxSize: number = MAX_TX_BYTES): Value {
  if (data.length > maxSize) {
    throw new CodecError("too_large", `object is ${data.length} bytes, over the ${maxSize}-byte limit`);
  }
  const r = new Reader(data);
  const value = read(r, 0);
  if (r.pos !== data.length) throw new CodecError("malformed", "trailing bytes after the object");
  if (!equalBytes(encode(value), data)) {
    throw new CodecError("non_canonical", "the object is not in canonical form");
  }
  return value;
}

/** The raw bytes of each object of a stream (objects back to back), each checked strictly. */
export function decodeStream(data: Uint8Array, maxSize: number): Value[] {
  const out: Value[] = [];
  let pos = 0;
  while (pos < data.length) {
    const r = new Reader(data.subarray(pos));
    read(r, 0);
    const raw = data.subarray(pos, pos + r.pos);
    out.push(decode(raw, maxSize));
    pos += r.pos;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

export function hex(data: Uint8Array): string {
  let s = "";
  for (const b of data) s += b.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(text: string, length?: number): Uint8Array {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error(`not lowercase hex: ${text.slice(0, 20)}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  if (length !== undefined && out.length !== length) {
    throw new Error(`expected ${length} bytes of hex, got ${out.length}`);
  }
  return out;
}

/** The API's JSON view of a value: bin as lowercase hex (docs/spec/01, "JSON views"). */
export function toJsonView(value: Value): unknown {
  if (value instanceof Uint8Array) return hex(value);
  if (typeof value === "bigint") return value;
  if (Array.isArray(value)) return value.map(toJsonView);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonView(v)]));
  }
  return value;
}
