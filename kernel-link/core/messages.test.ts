import fc from 'fast-check';
import { expect, it } from 'vitest';
import { encodeValue } from '../../axiom/value.ts';
import { decodeMessage, encodeEntriesPayload, encodeMessage, messageValue, MsgType, type Message } from './messages.ts';

it('ENTRIES: the direct encoder equals the canonical value encoding, and the fast decoder equals the generic one', () => {
  fc.assert(fc.property(fc.nat({ max: 2 ** 32 - 1 }), fc.nat(), fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), (stream, seq, entries) => {
    const m: Message = { t: 'entries', stream, seq, entries };
    const direct = encodeEntriesPayload(stream, seq, entries);
    expect([...direct]).toEqual([...encodeValue(messageValue(m).value)]);
    // Into a dirty scratch buffer (large enough, or too small and so ignored): the same bytes.
    for (const scratch of [new Uint8Array(direct.length + 7).fill(0xee), new Uint8Array(direct.length - 1).fill(0xee)]) {
      expect([...encodeEntriesPayload(stream, seq, entries, scratch)]).toEqual([...direct]);
    }
    const d = decodeMessage(MsgType.Entries, direct);
    expect(d.ok && d.msg).toEqual(m);
  }));
});

it('ENTRIES with an extra key still decodes (generic path); broken ones are bad-message, never a throw', () => {
  const v = { entries: [Uint8Array.of(1, 2)], extra: 'x', seq: 4, stream: 9 };
  expect(decodeMessage(MsgType.Entries, encodeValue(v))).toEqual({ ok: true, msg: { t: 'entries', stream: 9, seq: 4, entries: [Uint8Array.of(1, 2)] } });
  const good = encodeEntriesPayload(9, 4, [Uint8Array.of(1, 2, 3)]);
  fc.assert(fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, x) => {
    const b = good.slice(); b[at % b.length] ^= x;
    const d = decodeMessage(MsgType.Entries, b);
    if (d.ok) expect(d.msg.t).toBe('entries');
    else expect(d.error.code).toBe('bad-message');
  }));
});

it('every message round-trips', () => {
  const msgs: Message[] = [
    { t: 'hello', rid: 1, min: 1, max: 1, client: 'c', maxFrame: 4096, consoleWindow: 0, caps: ['a'] },
    { t: 'welcome', rid: 0, version: 1, device: new Uint8Array(16), boot: new Uint8Array(16).fill(2), os: 'o', head: 3, maxFrame: 4096, maxRequests: 2, caps: [] },
    { t: 'ping', rid: 5 }, { t: 'pong', rid: 5, head: 9 }, { t: 'close', reason: 'normal', detail: '' },
    { t: 'error', rid: 3, code: 'busy', detail: 'd' },
    { t: 'propose', rid: 2, proposal: { actor: 1, id: 2, domain: 1, action: 'echo', args: { text: 'x' }, time: 7 } },
    { t: 'result', rid: 2, status: 'duplicate', of: 'rejected', seq: 4, receipt: -1, reason: 'bad-args', detail: 'no' },
    { t: 'subscribe', rid: 8, from: 3, prev: new Uint8Array(32).fill(1), window: 100 },
    { t: 'credit', stream: 8, limit: 200 }, { t: 'console', text: Uint8Array.of(0xff, 0x0a) },
  ];
  for (const m of msgs) {
    const { type, payload } = encodeMessage(m);
    const d = decodeMessage(type, payload);
    expect(d.ok && d.msg).toEqual(m);
  }
});
