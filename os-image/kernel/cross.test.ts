// Cross-implementation: the same random sequence of proposals goes to the hosted OS (TypeScript
// sequencer and reducers, os-image/hosted/) and to the guest kernel in QEMU (Rust, over
// kernel-link on virtio). Both logs must be equal entry by entry in kind, domain, seq, time,
// actor and payload (BOOT payloads excepted: device-specific, docs/axiom.md section 3) — which
// includes every CHECKPOINT's state hashes — and every RESULT must agree.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeEntry } from '../../axiom/entry.ts';
import { initAxiom, toHex } from '../../axiom/hash.ts';
import type { Proposal, Value, ValueMap } from '../../axiom/types.ts';
import { verifyChain } from '../../axiom/verify.ts';
import { decodeValue, encodeValue } from '../../axiom/value.ts';
import { HostedOs } from '../hosted/hosted-os.ts';
import { describeWithTools } from '../../scripts/testkit.ts';
import { bootGuest, buildKernel, LinkClient, type Guest } from './harness.ts';

const K = 8; // small, so the run crosses many checkpoints
const N = 400;

/** mulberry32: a seeded generator, so a failing sequence can be replayed with ORBITAL_SEED. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

/** Random proposals over every os action, the sh commands, bad arguments, unknown actions and domains, missing capabilities, duplicates. */
function proposals(seed: number): Proposal[] {
  const r = rng(seed);
  const keys = ['a', 'b', 'color', 'ключ', 'x'.repeat(256), ''];
  const names = ['net', 'db', 'web', 'log'];
  const word = () => r.pick(['hello', 'world', 'blue', 'ümlaut', '  spaced  ', '42', 'ps']);
  const ids = new Map<number, number>();
  const out: Proposal[] = [];
  for (let i = 0; i < N; i++) {
    if (i > 10 && r.next() < 0.06) { out.push(out[r.int(out.length)]!); continue; } // a retry: duplicate
    const actor = r.pick([0, 1, 1, 1, 2, 3, 7]);
    const id = (ids.get(actor) ?? 0) + 1; ids.set(actor, id);
    const time = r.next() < 0.15 ? r.int(5000) : 0;
    let domain = 1, action: string, args: ValueMap;
    const c = r.int(16);
    if (c === 0) { action = 'echo'; args = { text: word() }; }
    else if (c === 1) { action = 'kv.set'; args = { key: r.pick(keys), value: word() }; }
    else if (c === 2) { action = 'kv.del'; args = { key: r.pick(keys) }; }
    else if (c === 3) { action = 'svc.start'; args = { name: r.pick(names) }; }
    else if (c === 4) { action = 'svc.stop'; args = { name: r.pick(names) }; }
    else if (c === 5) { action = r.pick(['cap.grant', 'cap.revoke']); args = { actor: r.pick([1, 3, 7, -1]), cap: r.pick(['kv', 'svc', 'console', 'admin']) }; }
    else if (c === 6) { action = 'job.run'; args = { name: r.pick(names), rounds: r.pick([1, 7, 100, 0, 1.5]), seed: new Uint8Array(r.int(8)).map(() => r.int(256)) }; }
    else if (c <= 10) {
      action = 'sh';
      const cmd = r.pick(['echo', 'set', 'get', 'del', 'start', 'stop', 'ps', 'help', '', 'frob']);
      args = { line: [cmd, ...(cmd === 'ps' || cmd === 'help' ? [] : [r.pick(keys.slice(0, 4)), ...(cmd === 'set' || cmd === 'echo' ? [word(), word()] : [])])].join(r.pick([' ', '  '])) };
    }
    else if (c === 11) { action = r.pick(['kv.set', 'echo', 'svc.start']); args = r.pick<ValueMap>([{}, { key: 'k' }, { text: 5 }, { name: 'n', extra: true }, { '2': 1, text: 'x' }]); }
    else if (c === 12) { action = r.pick(['nope', 'kv.get', '']); args = {}; }
    else if (c === 13) { domain = r.pick([2, 3]); action = r.pick(['window.open', 'focus', 'flash']); args = { title: word(), n: r.int(10) }; }
    else if (c === 14) { domain = r.pick([0, 4, 9, 300]); action = 'x'; args = {}; }
    else { action = 'kv.set'; args = { key: 'nested', value: word() }; }
    // As the wire delivers it: the canonical decoding (keys sorted), which both sides then see.
    const wire = decodeValue(encodeValue(args));
    out.push({ actor, id, domain, action, args: (wire.ok ? wire.value : args) as ValueMap, time });
  }
  return out;
}

describeWithTools(['qemu-system-x86_64', 'cargo'], 'guest kernel ≡ hosted OS (cross-implementation)', () => {
  let guest: Guest | undefined;
  let dir = '';
  beforeAll(async () => { buildKernel(); await initAxiom(); dir = mkdtempSync(join(tmpdir(), 'orbital-cross-')); }, 120_000);
  afterAll(async () => { await guest?.close(); if (dir) rmSync(dir, { recursive: true, force: true }); });

  it(`${N} random proposals give the same entries and the same state hashes at every checkpoint`, async () => {
    const seed = Number(process.env.ORBITAL_SEED ?? Date.now() % 1_000_000_007);
    const why = `(seed ${seed}: replay with ORBITAL_SEED=${seed})`;
    const ps = proposals(seed);
    const hosted = await HostedOs.start({ dataDir: dir, k: K, fsync: 'never' });
    guest = await bootGuest({ virtio: true, append: `k=${K}` });
    const link = new LinkClient(guest.virtio!);
    await link.handshake(0);
    try {
      for (const [i, p] of ps.entries()) {
        const h = hosted.propose(p);
        const g = await link.request({ t: 'propose', rid: link.nextRid(), proposal: p });
        if (g.t !== 'result') throw new Error(`proposal ${i}: guest answered ${JSON.stringify(g)} ${why}`);
        const hr = { status: h.status, seq: h.seq, receipt: 'receiptSeq' in h && h.receiptSeq !== undefined ? h.receiptSeq : -1, reason: h.status === 'rejected' ? h.reason : '', detail: h.status === 'rejected' ? h.detail : '' };
        expect({ status: g.status, seq: g.seq, receipt: g.receipt, reason: g.reason, detail: g.detail }, `RESULT of proposal ${i} ${JSON.stringify(p)} ${why}`).toEqual(hr);
      }
      const head = hosted.entries.length;
      link.subscribe(0, new Uint8Array(32));
      await link.until(() => link.entries.length >= head, 60_000, 'guest entries');
      expect(link.entries.length, why).toBe(head);
      expect(verifyChain(link.entries).ok, `guest chain verifies ${why}`).toBe(true);
      expect(verifyChain(hosted.entries).ok).toBe(true);
      let checkpoints = 0;
      for (let s = 0; s < head; s++) {
        const a = decodeEntry(hosted.entries[s]!), b = decodeEntry(link.entries[s]!);
        if (!a.ok || !b.ok) throw new Error(`entry ${s} does not decode ${why}`);
        const strip = (e: typeof a.value) => ({ kind: e.kind, domain: e.domain, seq: e.seq, time: e.time, actor: e.actor, payload: e.kind === 1 ? '(BOOT: device-specific)' : toHex(e.payload) });
        expect(strip(b.value), `entry ${s} ${why}`).toEqual(strip(a.value));
        if (a.value.kind === 5) checkpoints++;
      }
      expect(checkpoints).toBeGreaterThan(N / K / 2);
    } finally { hosted.close(); }
  }, 180_000);
});
