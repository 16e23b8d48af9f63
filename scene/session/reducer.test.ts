import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GENESIS, Kind, Sequencer, encodeEntry, encodeValue, entryHash, initAxiom, osReducer, replay, systemReducer, toHex, verifyChain,
  type Appended, type Entry, type Value,
} from '../../axiom/index.ts';
import { paintOrder } from '../compositor/zorder.ts';
import { randomActions, type ActionSpec } from './random.ts';
import { applyCommit, sceneHash, sessionReducer } from './reducer.ts';
import type { SessionState } from './state.ts';

beforeAll(() => initAxiom());

const reducers = [systemReducer, osReducer, sessionReducer];
const device = () => {
  const s = new Sequencer({ reducers, deviceId: new Uint8Array(16), bootId: new Uint8Array(16).fill(1), os: 'test', k: 16 });
  s.boot();
  return s;
};

/** Runs actions through a real sequencer (actor 1 = the session); returns every appended entry. */
function run(actions: ActionSpec[]): { seq: Sequencer; out: Appended[]; boot: Appended[] } {
  const seq = new Sequencer({ reducers, deviceId: new Uint8Array(16), bootId: new Uint8Array(16).fill(1), os: 'test', k: 16 });
  const boot = seq.boot();
  const out: Appended[] = [...boot];
  actions.forEach((a, i) => {
    const r = seq.propose({ actor: 1, id: i + 1, domain: 2, action: a.action, args: a.args, time: i + 1 });
    out.push(...r.entries);
  });
  return { seq, out, boot };
}

const session = (s: Sequencer): SessionState => s.stateOf(sessionReducer)!;
const act = (s: Sequencer, action: string, args: Record<string, Value>, id = Math.floor(Math.random() * 1e9)) =>
  s.propose({ actor: 1, id, domain: 2, action, args, time: 0 });

describe('session reducer', () => {
  it('opens, focuses, moves, resizes, minimizes, maximizes and closes windows', () => {
    const d = device();
    act(d, 'window.open', { app: 'term', title: 'Terminal', bounds: { x: 10.4, y: -0.4, w: 300, h: 200 } }, 1);
    act(d, 'window.open', { app: 'notes', title: 'Notes' }, 2);
    let s = session(d);
    expect([...s.windows.keys()]).toEqual([1, 2]);
    expect(s.windows.get(1)).toMatchObject({ x: 10, y: 0, w: 300, h: 200, mode: 'normal', band: 'normal' });
    expect(Object.is(s.windows.get(1)!.y, -0)).toBe(false);
    expect(s.focused).toBe(2);
    expect(paintOrder(s).map((w) => w.id)).toEqual([1, 2]);
    act(d, 'window.focus', { id: 1 }, 3);
    expect(paintOrder(session(d)).map((w) => w.id)).toEqual([2, 1]);
    act(d, 'window.move', { id: 2, x: 500, y: 60 }, 4);
    act(d, 'window.resize', { id: 2, w: 10, h: 99999 }, 5);
    s = session(d);
    expect(s.windows.get(2)).toMatchObject({ x: 500, y: 60, w: 120, h: 16384 });
    act(d, 'window.minimize', { id: 1 }, 6);
    s = session(d);
    expect(s.focused).toBe(2);
    expect(paintOrder(s).map((w) => w.id)).toEqual([2]);
    act(d, 'window.maximize', { id: 1 }, 7);
    s = session(d);
    expect(s.windows.get(1)!.mode).toBe('maximized');
    expect(s.focused).toBe(1);
    act(d, 'text.input', { id: 1, text: 'héllo 🙂' }, 8);
    act(d, 'text.delete', { id: 1, count: 1 }, 9);
    expect(session(d).windows.get(1)!.text).toBe('héllo ');
    act(d, 'window.close', { id: 1 }, 10);
    s = session(d);
    expect([...s.windows.keys()]).toEqual([2]);
    expect(s.focused).toBe(2);
    expect(s.rejected).toBe(0);
    expect(s.applied).toBe(10);
  });

  it('keeps bands apart: background below normal below overlay, whatever the focus order', () => {
    const d = device();
    act(d, 'window.open', { app: 'a', title: 'over', band: 'overlay' }, 1);
    act(d, 'window.open', { app: 'a', title: 'bg', band: 'background' }, 2);
    act(d, 'window.open', { app: 'a', title: 'n1' }, 3);
    act(d, 'window.open', { app: 'a', title: 'n2' }, 4);
    act(d, 'window.focus', { id: 3 }, 5);
    act(d, 'window.focus', { id: 2 }, 6);
    expect(paintOrder(session(d)).map((w) => w.title)).toEqual(['bg', 'n2', 'n1', 'over']);
  });

  it('turns bad actions into typed rejections recorded in the state, and the log still verifies', () => {
    const d = new Sequencer({ reducers, deviceId: new Uint8Array(16), bootId: new Uint8Array(16).fill(1), os: 'test', k: 16 });
    const log = d.boot().map((a) => a.encoded);
    log.push(...act(d, 'window.open', { app: 'term', title: 'T' }, 1).entries.map((a) => a.encoded));
    const before = toHex(sceneHash(session(d)));
    const bad: [string, Record<string, Value>, string][] = [
      ['window.explode', { id: 1 }, 'unknown-action'],
      ['window.move', { id: 99, x: 0, y: 0 }, 'no-such-window'],
      ['window.move', { id: 1, x: NaN, y: 0 }, 'bad-number'],
      ['window.resize', { id: 1, w: Infinity, h: 100 }, 'bad-number'],
      ['window.resize', { id: 1, w: 100, h: -Infinity }, 'bad-number'],
      ['window.move', { id: 1, x: 2n ** 62n, y: 0 }, 'bad-number'],
      ['window.open', { app: 'a', title: 'b', bounds: { x: 0, y: 0, w: NaN, h: 1 } }, 'bad-number'],
      ['window.title', { id: 1, title: 'z'.repeat(900_000) }, 'too-large'],
      ['text.input', { id: 1, text: '\u{1F642}'.repeat(2000) }, 'too-large'],
      ['window.focus', { id: 'one' }, 'bad-args'],
      ['window.focus', { id: 1, extra: 1 }, 'bad-args'],
      ['window.close', {}, 'bad-args'],
      ['window.open', { app: '', title: '' }, 'bad-args'],
      ['window.open', { app: 'a', title: 'b', band: 'sky' }, 'bad-args'],
      ['window.move', { id: 1, x: [1], y: { a: 1 } }, 'bad-args'],
      ['text.delete', { id: 1, count: 1.5 }, 'bad-args'],
    ];
    bad.forEach(([action, args], i) => {
      const r = act(d, action, args, 100 + i);
      expect(r.status).toBe('committed');
      log.push(...r.entries.map((a) => a.encoded));
    });
    expect(verifyChain(log).ok).toBe(true);
    // A replay of the log (as another machine would do it) reaches the same state.
    expect(toHex(sceneHash(replay(reducers, log).stateOf(sessionReducer)!))).toBe(toHex(sceneHash(session(d))));
    const s = session(d);
    expect(s.rejected).toBe(bad.length);
    // Only the last few are kept, each with its code and a readable detail of bounded size.
    expect(s.last.map((r) => r.code)).toEqual(bad.slice(-8).map((b) => b[2]));
    for (const r of s.last) { expect(r.detail.length).toBeLessThanOrEqual(201); expect(r.detail).not.toBe(''); }
    const codes = Object.fromEntries(s.codes);
    for (const [, , code] of bad) expect(codes[code]).toBeGreaterThan(0);
    // The windows did not change: only the rejection record did.
    expect(s.windows.get(1)).toMatchObject({ x: 40, y: 40, w: 480, h: 320, title: 'T', text: '' });
    expect(toHex(sceneHash(s))).not.toBe(before);
  });

  it('records malformed COMMITs (payload not a map, args not a map, a 1 MB string) and the chain verifies', () => {
    const log: Uint8Array[] = [];
    // Hand-made entries: what a buggy or hostile writer could put in a log that still verifies.
    let prev: Uint8Array = GENESIS;
    const push = (kind: number, domain: number, payload: Value) => {
      const e: Entry = { version: 1, kind, domain, seq: log.length, time: log.length + 1, actor: 1, prev, payload: encodeValue(payload) };
      const b = encodeEntry(e);
      prev = entryHash(b);
      log.push(b);
    };
    push(Kind.Boot, 0, { device: new Uint8Array(16), boot: new Uint8Array(16), os: 'x', k: 256 });
    push(Kind.Commit, 2, 'not a map');
    push(Kind.Commit, 2, { id: 1, action: 'window.open', args: 'nope' });
    push(Kind.Commit, 2, { id: 2, args: {} });
    push(Kind.Commit, 2, { id: 3, action: 'window.open', args: { app: 'a', title: 'x'.repeat(1_048_000) } });
    push(Kind.Commit, 2, { id: 4, action: 'x'.repeat(1_048_000), args: {} });
    push(Kind.Commit, 2, { id: 5, action: 'window.open', args: { app: 'a', title: 'ok' } });
    expect(verifyChain(log).ok).toBe(true);
    const r = replay(reducers, log);
    const s = r.stateOf(sessionReducer)!;
    expect(s.applied).toBe(6);
    expect(s.rejected).toBe(5);
    expect(s.last.map((x) => x.code)).toEqual(['malformed-entry', 'malformed-entry', 'malformed-entry', 'too-large', 'unknown-action']);
    expect(s.last[4]!.action.length).toBeLessThanOrEqual(65);
    expect(s.windows.size).toBe(1);
    // The rejection record is small: no copy of the megabyte.
    expect(encodeValue(sessionReducer.toValue(s)).length).toBeLessThan(4000);
  });

  it('limits: 256 windows, 64 KiB of text per window', () => {
    const s = sessionReducer.init();
    for (let i = 0; i < 256; i++) expect(applyCommit(s, i, { id: i, action: 'window.open', args: { app: 'a', title: '' } })).toBeNull();
    expect(applyCommit(s, 256, { id: 256, action: 'window.open', args: { app: 'a', title: '' } })?.code).toBe('limit');
    expect(s.nextId).toBe(257);
    const chunk = 'é'.repeat(2048); // 4096 bytes
    for (let i = 0; i < 16; i++) expect(applyCommit(s, 300 + i, { id: 0, action: 'text.input', args: { id: 1, text: chunk } })).toBeNull();
    expect(applyCommit(s, 400, { id: 0, action: 'text.input', args: { id: 1, text: 'x' } })?.code).toBe('too-large');
    expect(s.windows.get(1)!.text.length).toBe(16 * 2048);
    expect(applyCommit(s, 401, { id: 0, action: 'text.delete', args: { id: 1, count: 4096 } })).toBeNull();
    expect(s.windows.get(1)!.text.length).toBe(14 * 2048);
  });

  it('ignores entries of other domains and non-COMMIT kinds', () => {
    const s0 = sessionReducer.init();
    const h0 = toHex(sceneHash(s0));
    const e = (kind: number, domain: number): Entry => ({ version: 1, kind, domain, seq: 0, time: 1, actor: 1, prev: GENESIS, payload: new Uint8Array() });
    const payload = { id: 1, action: 'window.open', args: { app: 'a', title: 'b' } };
    let s = sessionReducer.apply(s0, e(Kind.Commit, 1), payload);
    s = sessionReducer.apply(s, e(Kind.Receipt, 2), payload);
    s = sessionReducer.apply(s, e(Kind.Reject, 2), payload);
    expect(toHex(sceneHash(s))).toBe(h0);
  });

  it('clone is independent of the original', () => {
    const d = device();
    act(d, 'window.open', { app: 'a', title: 'b' }, 1);
    const s = session(d);
    const c = sessionReducer.clone(s);
    const h = toHex(sceneHash(c));
    act(d, 'window.move', { id: 1, x: 5, y: 5 }, 2);
    act(d, 'window.open', { app: 'a', title: 'c' }, 3);
    expect(toHex(sceneHash(c))).toBe(h);
  });
});

describe('determinism', () => {
  const hashesAt = (out: Appended[]): string[] => {
    // Replays entry by entry and records the scene hash after each.
    const st = sessionReducer.init();
    let s = st;
    return out.map((a) => { s = sessionReducer.apply(s, a.entry, decodePayload(a.entry)); return toHex(sceneHash(s)); });
  };

  it('random action sequences replayed twice give identical scene hashes at every entry (with the live state too)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 120 }), (seed, n) => {
      const { seq, out } = run(randomActions(seed, n, 0.1));
      const a = hashesAt(out), b = hashesAt(out);
      expect(a).toEqual(b);
      expect(a[a.length - 1]).toBe(toHex(sceneHash(session(seq))));
      expect(toHex(sceneHash(replay(reducers, out.map((x) => x.encoded)).stateOf(sessionReducer)!))).toBe(a[a.length - 1]);
    }), { numRuns: 40 });
  });

  it('a fresh process replaying the log computes the same scene hash at every entry', () => {
    const { out } = run(randomActions(20261125, 300, 0.1));
    const expected = hashesAt(out);
    const dir = mkdtempSync(join(tmpdir(), 'orbital-session-'));
    const file = join(dir, 'log.bin');
    const parts: Uint8Array[] = [];
    for (const a of out) { const len = new Uint8Array(4); new DataView(len.buffer).setUint32(0, a.encoded.length, true); parts.push(len, a.encoded); }
    writeFileSync(file, Buffer.concat(parts));
    const here = resolve(import.meta.dirname);
    writeFileSync(join(dir, 'replay.mts'), `
      import { readFileSync } from 'node:fs';
      import { initAxiom, decodeEntry, decodeValue, toHex } from ${JSON.stringify(join(here, '../../axiom/index.ts'))};
      import { sessionReducer, sceneHash } from ${JSON.stringify(join(here, 'reducer.ts'))};
      await initAxiom();
      const b = readFileSync(process.argv[2]);
      let s = sessionReducer.init(); const out = [];
      for (let p = 0; p < b.length;) {
        const n = b.readUInt32LE(p); p += 4;
        const e = decodeEntry(new Uint8Array(b.buffer, b.byteOffset + p, n)); p += n;
        if (!e.ok) throw new Error('bad entry');
        const v = decodeValue(e.value.payload);
        s = sessionReducer.apply(s, e.value, v.ok ? v.value : undefined);
        out.push(toHex(sceneHash(s)));
      }
      console.log(JSON.stringify(out));
    `);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, 'replay.mts'), file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual(expected);
  });
});

import { decodeValue } from '../../axiom/index.ts';
function decodePayload(e: Entry): Value | undefined {
  const v = decodeValue(e.payload);
  return v.ok ? v.value : undefined;
}
