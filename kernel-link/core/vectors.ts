// Builds the test vectors of docs/kernel-link.md section 9 (docs/vectors/kernel-link-v1.json).
// Pure and deterministic: the same code always yields the same file. kernel-link/node/vectors.gen.ts
// writes it; frame.test.ts checks the committed file against the decoder and encoder.
import { encodeEntry, GENESIS } from '../../axiom/entry.ts';
import { toHex } from '../../axiom/hash.ts';
import { encodeValue } from '../../axiom/value.ts';
import type { Value } from '../../axiom/types.ts';
import { crc32 } from './crc32.ts';
import { decodeAll, encodeFrame, stuffText, type DecodedEvent } from './frame.ts';
import { encodeMessage, messageValue, type Message } from './messages.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0; for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const bytes = (...xs: number[]) => new Uint8Array(xs);
const id16 = (b: number) => Uint8Array.from({ length: 16 }, (_, i) => (b + i * 17) & 0xff);

/** JSON form of a value in the vectors: bytes as {"$bytes": hex}. */
export function vectorJson(v: Value): unknown {
  if (v instanceof Uint8Array) return { $bytes: toHex(v) };
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(vectorJson);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, vectorJson(x)]));
  return v;
}

export function eventsJson(events: DecodedEvent[]): unknown[] {
  return events.map((e) => 'text' in e ? { text_hex: toHex(e.text) } : 'frame' in e ? { frame: { type: e.frame.type, payload_hex: toHex(e.frame.payload) } } : { drop: e.drop.reason });
}

export function buildVectors(): Record<string, unknown> {
  const bootEntry = encodeEntry({ version: 1, kind: 1, domain: 0, seq: 0, time: 1, actor: 0, prev: GENESIS, payload: encodeValue({ boot: id16(0xf0), device: id16(0x10), k: 256, os: 'orbital-hosted 0.1' }) });
  const messages: Array<[string, Message]> = [
    ['hello', { t: 'hello', rid: 1, min: 1, max: 1, client: 'orbital-shell', maxFrame: 2_097_152, consoleWindow: 65536, caps: [] }],
    ['welcome', { t: 'welcome', rid: 1, version: 1, device: id16(0x10), boot: id16(0xf0), os: 'orbital-kernel 0.1', head: 42, maxFrame: 16384, maxRequests: 4, caps: ['entries', 'propose'] }],
    ['welcome-unsolicited', { t: 'welcome', rid: 0, version: 1, device: id16(0x10), boot: id16(0xf0), os: 'orbital-kernel 0.1', head: 1, maxFrame: 4096, maxRequests: 1, caps: ['entries', 'propose', 'console-frames'] }],
    ['ping', { t: 'ping', rid: 255 }],
    ['pong', { t: 'pong', rid: 255, head: 65535 }],
    ['close', { t: 'close', reason: 'protocol', detail: 'frame of 9999999 bytes' }],
    ['error-version', { t: 'error', rid: 7, code: 'version', detail: 'device speaks 1..1' }],
    ['propose', { t: 'propose', rid: 3, proposal: { actor: 1, id: 17, domain: 1, action: 'kv.set', args: { key: 'color', value: 'blue' }, time: 0 } }],
    ['result-committed', { t: 'result', rid: 3, status: 'committed', of: 'committed', seq: 5, receipt: 6, reason: '', detail: '' }],
    ['result-rejected', { t: 'result', rid: 4, status: 'rejected', of: 'rejected', seq: 7, receipt: -1, reason: 'missing-capability', detail: "actor 9 lacks capability 'kv'" }],
    ['result-duplicate', { t: 'result', rid: 5, status: 'duplicate', of: 'committed', seq: 5, receipt: 6, reason: '', detail: '' }],
    ['subscribe', { t: 'subscribe', rid: 9, from: 0, prev: new Uint8Array(32), window: 262144 }],
    ['entries', { t: 'entries', stream: 9, seq: 0, entries: [bootEntry] }],
    ['credit', { t: 'credit', stream: 9, limit: 524288 }],
    ['console', { t: 'console', text: cat(utf8('panic: \u00e9'), bytes(0xff, 0x0a)) }],
  ];
  const frames = messages.map(([name, m]) => {
    const { type, payload } = encodeMessage(m);
    return { name, type, payload_hex: toHex(payload), value: vectorJson(messageValue(m).value), wire_hex: toHex(encodeFrame(type, payload)) };
  });
  const wire = (name: string) => encodeFrame(...(() => { const m = messages.find((x) => x[0] === name)![1]; const e = encodeMessage(m); return [e.type, e.payload] as const; })());
  const hello = wire('hello'), pong = wire('pong'), entries = wire('entries'), consoleF = wire('console');
  const flip = (b: Uint8Array, at: number) => { const c = b.slice(); c[at] = c[at]! ^ 0x01; return c; };
  // A frame whose header holds an FF (length 255 → FF 00 stuffed in the length field).
  const p255 = Uint8Array.from({ length: 255 }, (_, i) => 255 - i);
  const f255 = encodeFrame(0x30, p255);
  // A frame header announcing N > 2 MiB with a correct header CRC: not a header.
  const hugeHead = (() => { const h = bytes(0xff, 0x4c, 0x21, 0, 0, 0, 0x40, 0); const c = crc32(h); return cat(h, bytes(c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24)); })();
  const streams: Array<{ name: string; max_frame: number; wire: Uint8Array }> = [
    { name: 'text only', max_frame: 2_097_152, wire: utf8('Orbital kernel 0.1 booting\r\nmem: 128 MiB\n') },
    { name: 'text with a stuffed FF', max_frame: 2_097_152, wire: stuffText(cat(utf8('a'), bytes(0xff), utf8('b\n'))) },
    { name: 'lenient raw FF in text', max_frame: 2_097_152, wire: cat(utf8('x'), bytes(0xff, 0x41), utf8('y'), bytes(0xff)) },
    { name: 'text, frame, text', max_frame: 2_097_152, wire: cat(utf8('boot ok\n'), hello, utf8('after\n')) },
    { name: 'frame mid-line', max_frame: 2_097_152, wire: cat(utf8('half a '), pong, utf8('line\n')) },
    { name: 'frames back to back', max_frame: 2_097_152, wire: cat(hello, pong, entries, consoleF) },
    { name: 'stuffed header and payload', max_frame: 2_097_152, wire: cat(f255, utf8('ok\n')) },
    { name: 'cut frame then a whole one', max_frame: 2_097_152, wire: cat(entries.subarray(0, 40), pong, utf8('z')) },
    { name: 'bad escape inside a frame', max_frame: 2_097_152, wire: cat(hello.subarray(0, 20), bytes(0xff, 0x41), utf8('text\n'), pong) },
    { name: 'damaged header becomes text', max_frame: 2_097_152, wire: cat(utf8('a'), flip(pong, 4), utf8('b')) },
    { name: 'damaged payload dropped, text kept', max_frame: 2_097_152, wire: cat(utf8('before\n'), flip(pong, pong.length - 8), utf8('after\n'), pong) },
    { name: 'oversized for this receiver', max_frame: 64, wire: cat(utf8('t1\n'), entries, utf8('t2\n'), pong) },
    { name: 'length above the hard limit', max_frame: 2_097_152, wire: cat(hugeHead, utf8('!\n')) },
    { name: 'garbage before the handshake', max_frame: 2_097_152, wire: cat(bytes(0x00, 0x13, 0x80, 0xc3, 0x28, 0xfe), utf8('\n'), hello) },
    { name: 'stream ends inside a frame', max_frame: 2_097_152, wire: cat(utf8('bye'), hello.subarray(0, 15)) },
    { name: 'stream ends after a lone FF', max_frame: 2_097_152, wire: cat(utf8('end'), bytes(0xff)) },
  ];
  return {
    about: 'kernel-link protocol v1 test vectors; see docs/kernel-link.md section 9. Regenerate: npx tsx kernel-link/node/vectors.gen.ts',
    crc32: [utf8('123456789'), new Uint8Array(0), bytes(0xff), bytes(0xff, 0x4c, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00), bootEntry].map((b) => ({ hex: toHex(b), crc: crc32(b) })),
    frames,
    streams: streams.map((s) => ({ name: s.name, max_frame: s.max_frame, wire_hex: toHex(s.wire), events: eventsJson(decodeAll([s.wire], { maxFrame: s.max_frame })) })),
  };
}
