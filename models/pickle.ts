/**
 * A small, restricted Python unpickler: enough of protocols 2–5 for `torch.save` checkpoints.
 *
 * Why hand-written: unpickling is executing a program. A pickle can name any Python callable
 * (`os.system`, `builtins.eval`) and call it with REDUCE, which is how malicious checkpoints
 * work. Considered: `pickleparser` (npm, 0.2.1), whose default name resolver turns every unknown
 * global into a placeholder object and carries on, so restricting it means overriding its
 * resolver and then auditing its whole protocol 0–5 surface (INST/OBJ, the extension registry)
 * for other paths; and `jpickle`, unmaintained for a decade and protocol ≤ 2 only. Neither is a
 * dependency of this project. This VM knows only the opcodes `torch.save` and plain pickles of
 * dicts/lists/numbers emit, has no built-in globals at all (every GLOBAL/STACK_GLOBAL goes
 * through the caller's `findClass`, which returns a value or throws), and REDUCE can only call
 * what `findClass` returned as a {@linkcode PickleFunction}. Nothing here evaluates code or
 * touches the system.
 *
 * Python values become: None → `null`, bool → boolean, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes → Uint8Array, tuple and list → Array, dict → Map.
 *
 * @module
 */

import { oneLine } from "./types.ts";

/** A callable that a pickle may REDUCE (or NEWOBJ); only `findClass` can hand these out. */
export class PickleFunction {
  constructor(
    /** Dotted Python name, for error messages. */
    readonly name: string,
    /** Receives the positional arguments tuple. */
    readonly call: (args: unknown[]) => unknown,
  ) {}
}

/** A pickle that is malformed or that the hooks refuse. */
export class PickleError extends Error {
  /** The error's name. */
  override name = "PickleError";
  /** `message` is made one line with {@linkcode oneLine} (pickled strings may hold newlines). */
  constructor(message: string) {
    super(oneLine(message));
  }
}

/** How the unpickler resolves names and persistent ids; it has no defaults of its own. */
export interface UnpickleHooks {
  /** Resolves GLOBAL/STACK_GLOBAL `module.name`. Throw to refuse the pickle. */
  findClass(module: string, name: string): unknown;
  /** Resolves BINPERSID (torch uses it for tensor storages). Absent: persistent ids are refused. */
  persistentLoad?(pid: unknown): unknown;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/**
 * Runs the pickle in `bytes` and returns the object it builds.
 *
 * @throws {PickleError} on an unknown opcode, truncated data, a malformed stack, or whatever the hooks
 * throw (e.g. a refused global).
 *
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * // pickle.dumps({"a": 1}, protocol=2)
 * const bytes = new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1, 0x73, 0x2e]);
 * unpickle(bytes, { findClass: (m, n) => { throw new Error(`refused ${m}.${n}`); } }); // Map { "a" => 1 }
 * ```
 */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let opStart = 0;

  const fail = (what: string): never => {
    throw new PickleError(`corrupt pickle: ${what} at byte ${opStart}`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail(`data ends (${bytes.length} bytes) inside an opcode`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, view.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, view.getUint32(pos - 4, true));
  const i32 = () => (need(4), pos += 4, view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const n = view.getBigUint64(pos, true);
    pos += 8;
    if (n > BigInt(bytes.length)) fail(`length ${n} exceeds the data`);
    return Number(n);
  };
  const take = (n: number) => {
    if (n < 0) fail("negative length");
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated GLOBAL name");
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const text = (n: number) => {
    const raw = take(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail("invalid UTF-8 in a string");
    }
  };
  const pop = () => (stack.length === 0 ? fail("stack underflow") : stack.pop());
  const top = () => (stack.length === 0 ? fail("stack underflow") : stack[stack.length - 1]);
  const popMark = () => {
    const items = stack;
    const outer = metastack.pop();
    if (!outer) return fail("no MARK to pop to");
    stack = outer;
    return items;
  };
  const call = (f: unknown, args: unknown) => {
    if (!(f instanceof PickleFunction)) fail(`call of a non-callable ${describe(f)}`);
    if (!Array.isArray(args)) fail("call with non-tuple arguments");
    return (f as PickleFunction).call(args as unknown[]);
  };
  const dict = (): Map<unknown, unknown> => {
    const d = top();
    return d instanceof Map ? d : fail(`SETITEM on a ${describe(d)}`);
  };
  const list = (): unknown[] => {
    const l = top();
    return Array.isArray(l) ? l : fail(`APPEND on a ${describe(l)}`);
  };
  const setItems = (d: Map<unknown, unknown>, items: unknown[]) => {
    if (items.length % 2 !== 0) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };

  while (true) {
    opStart = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("pickle protocol newer than 5");
        break;
      case 0x95: // FRAME: framing is transparent to the reader
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;

      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(decodeLong(take(i32())));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;

      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()).slice());
        break;

      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: { // TUPLE
        const items = popMark(); // before naming `stack`: popMark replaces it
        stack.push(items);
        break;
      }
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: { // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        list().push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = list();
        for (const item of items) l.push(item);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        dict().set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(dict(), items);
        break;
      }

      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo entry ${i} read before it was written`);
        stack.push(memo.get(i));
        break;
      }

      case 0x63: { // GLOBAL
        const module = line();
        stack.push(hooks.findClass(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("non-string STACK_GLOBAL");
        stack.push(hooks.findClass(module as string, name as string));
        break;
      }
      case 0x52: // REDUCE: f(*args)
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args); the allow-list decides what both mean
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: // BUILD
        // obj.__setstate__(state). The only state torch pickles for a state_dict is
        // OrderedDict._metadata (per-module version numbers), which nothing here needs.
        pop();
        top();
        break;
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) fail("persistent id without a loader");
        stack.push(hooks.persistentLoad!(pid));
        break;
      }

      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

/** Python's LONG1/LONG4 payload: little-endian two's complement. */
function decodeLong(b: Uint8Array): number | bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  if (b.length > 0 && b[b.length - 1] & 0x80) n -= 1n << BigInt(8 * b.length);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(n)
    : n;
}

/** A short description of a Python value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof PickleFunction) return v.name;
  if (v instanceof Map) return "dict";
  if (Array.isArray(v)) return "tuple/list";
  if (v instanceof Uint8Array) return "bytes";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}
