// Trace capture, replay and export against real devices: the guest kernel in QEMU (entries over
// virtio-console) and the hosted OS (entries over its kernel-link socket), including a device
// restart and a capture killed mid-stream, both resumed without a gap or a duplicate.
import { describe, expect, it, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeWithTools } from '../../scripts/testkit.ts';
import { initAxiom, Sequencer, systemReducer, osReducer, encodeEntry, decodeEntry, entryHash, encodeValue, decodeValue, isMap, toHex, GENESIS, Kind } from '../../axiom/index.ts';
import { TraceWriter, scanTraceSync, verifyTraceFile } from '../../axiom/node/trace-file.ts';
import { connectLink } from '../../kernel-link/node/client.ts';
import { parseLab, type Lab } from '../labfile.ts';
import { captureTrace } from './capture.ts';
import { replayTrace } from './replay.ts';
import { exportChrome } from './export.ts';
import { guestArtifacts } from '../testguest.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const BIN = join(ROOT, 'bin/orbital-lab.mjs');
const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => { for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = (p: string) => { const d = mkdtempSync(join(tmpdir(), p)); dirs.push(d); return d; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function labOf(dir: string, text: string): Lab {
  writeFileSync(join(dir, 'lab.yaml'), text);
  const r = parseLab(text, join(dir, 'lab.yaml'));
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.lab;
}

function entriesOf(path: string): string[] {
  const out: string[] = [];
  scanTraceSync(path, (r) => { out.push(toHex(r.hash)); });
  return out;
}

describeWithTools(['qemu-system-x86_64'], 'capture from the guest kernel in QEMU', () => {
  it('captures over virtio-console and replays with every checkpoint matching; exports Chrome JSON', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const dir = tmp('orbital-cap-q-');
    const lab = labOf(dir, `version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n    boot: { success: "ready: head" }\n`);
    const out = join(dir, 'vm.orbtrace');
    // fill: the kernel commits kv.set actions of its own; k=8: a checkpoint every 8 entries.
    const r = await captureTrace({ lab, device: lab.devices.get('vm')!, out, untilSeq: 40, append: 'fill=100000 k=8' });
    expect(r.stopped).toBe('until-seq');
    expect(r.lastSeq).toBeGreaterThanOrEqual(40);
    const rep = await replayTrace(out);
    expect(rep.verify.ok).toBe(true);
    expect(rep.checkpoints).toBeGreaterThanOrEqual(5);
    expect(rep.divergence).toBeNull();
    expect(rep.ok).toBe(true);
    const ex = await exportChrome(out, join(dir, 'vm.json'));
    const json = JSON.parse(readFileSync(join(dir, 'vm.json'), 'utf8'));
    expect(json.traceEvents.length).toBe(ex.events);
    expect(json.traceEvents.some((e: { ph: string; name: string }) => e.ph === 'X' && e.name === 'kv.set')).toBe(true);
  });
});

describeWithTools(['qemu-system-x86_64'], 'a QEMU capture across dropped virtio connections', () => {
  it('reconnects to the virtio link QEMU serves and goes on without a gap or a duplicate', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const dir = tmp('orbital-cap-drop-');
    const lab = labOf(dir, `version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n    boot: { success: "ready: head" }\n`);
    const out = join(dir, 'vm.orbtrace');
    const links: Array<{ close(): void; closed: boolean }> = [];
    const cutAt = [15, 90];
    const r = await captureTrace({
      lab, device: lab.devices.get('vm')!, out, untilSeq: 200, append: 'fill=600000 k=8',
      onLink: (t) => { links.push(t); },
      // Cut the live connection mid-stream, twice (the second time on the reconnected link).
      onProgress: (p) => { if (cutAt.length && p.seq >= cutAt[0]! && links.length === 3 - cutAt.length) { cutAt.shift(); links[links.length - 1]!.close(); } },
    });
    expect(cutAt).toEqual([]);
    expect(links.length).toBeGreaterThanOrEqual(3);
    expect(r.reconnects).toBeGreaterThanOrEqual(2);
    expect(r.stopped).toBe('until-seq');
    // Every entry exactly once: seq 0..last, each following the one before (the chain check).
    const v = verifyTraceFile(out);
    expect(v.ok).toBe(true);
    expect(v.count).toBe(r.lastSeq + 1);
    expect(r.written).toBe(r.lastSeq + 1);
    const rep = await replayTrace(out);
    expect(rep.ok).toBe(true);
    expect(rep.checkpoints).toBeGreaterThanOrEqual(10);
  });
});

describe('capture from the hosted OS (kernel-link socket), resumed across restarts', () => {
  function startHosted(data: string): Promise<ChildProcess> {
    // One process (tsx as a loader, not the tsx CLI that forks a child) so SIGKILL really kills the device.
    const p = spawn(process.execPath, ['--import', TSX_LOADER, join(ROOT, 'os-image/hosted/cli.ts'), 'serve', '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
    kids.push(p);
    return new Promise((res, rej) => {
      let out = '';
      p.stdout!.on('data', (d: Buffer) => { out += d; if (/kernel-link: unix:/.test(out)) res(p); });
      p.once('exit', (c) => rej(new Error(`hosted OS exited ${c}: ${out}`)));
    });
  }
  async function propose(sock: string, from: number, n: number) {
    await initAxiom();
    const c = await connectLink({ path: sock }, { subscribe: false });
    for (let i = 0; i < n; i++) {
      const r = await c.propose({ id: from + i, domain: 1, action: 'kv.set', args: { key: `k${from + i}`, value: 'v'.repeat(100) } });
      expect(r.status).toBe('committed');
    }
    c.close();
  }

  it('keeps one gapless, duplicate-free copy of the device log through a device restart and a killed capture', async () => {
    const dir = tmp('orbital-cap-h-');
    const data = join(dir, 'data');
    const sock = join(data, 'link.sock');
    const lab = labOf(dir, `version: 1\ndevices:\n  hosted:\n    kind: serial-board\n    link: { socket: ${sock} }\n`);
    const dev = lab.devices.get('hosted')!;
    const out = join(dir, 'hosted.orbtrace');
    let os = await startHosted(data);
    await propose(sock, 1, 10);

    // 1. A capture process killed with SIGKILL mid-stream.
    const child = spawn(process.execPath, [BIN, '--lab', join(dir, 'lab.yaml'), '--json', 'capture', 'hosted', '-o', out, '--for', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    kids.push(child);
    const t0 = Date.now();
    while (!(existsSync(out) && verifyTraceFile(out).count >= 5)) { if (Date.now() - t0 > 30_000) throw new Error('capture wrote nothing'); await sleep(50); }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));

    // 2. Resume in-process while the device restarts underneath.
    const ac = new AbortController();
    let seen = 0;
    const cap = captureTrace({ lab, device: dev, out, signal: ac.signal, onProgress: (p) => { seen = p.seq; } });
    await propose(sock, 11, 10);
    os.kill('SIGKILL');
    await new Promise((r) => os.once('close', r));
    await sleep(300);
    os = await startHosted(data);
    await propose(sock, 21, 10);
    // Wait until the capture holds everything the device has.
    const deviceLog = join(data, 'log.orbtrace');
    const t1 = Date.now();
    while (seen < verifyTraceFile(deviceLog).count - 1) { if (Date.now() - t1 > 30_000) throw new Error(`capture stuck at ${seen}`); await sleep(50); }
    ac.abort();
    const r = await cap;
    expect(r.resumedFrom).toBeGreaterThanOrEqual(5);
    expect(r.reconnects).toBeGreaterThanOrEqual(1);
    expect(verifyTraceFile(out).ok).toBe(true);
    // The capture is the device's own log, entry for entry: nothing missing, nothing twice.
    expect(entriesOf(out)).toEqual(entriesOf(deviceLog));
    const rep = await replayTrace(out);
    expect(rep.ok).toBe(true);
    os.kill('SIGKILL');
  });
});

describe('replay divergence', () => {
  it('names the first checkpoint that disagrees, the window and the state diff', async () => {
    await initAxiom();
    const dir = tmp('orbital-div-');
    const seq = new Sequencer({ reducers: [systemReducer, osReducer], deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), os: 'test', k: 8 });
    const all: Uint8Array[] = seq.boot().map((a) => a.encoded);
    for (let i = 1; i <= 12; i++) {
      const r = seq.propose({ actor: 1, id: i, domain: 1, action: 'kv.set', args: { key: `k${i}`, value: String(i) }, time: 0 });
      all.push(...r.entries.map((a) => a.encoded));
    }
    // Rewrite: the 2nd checkpoint records a wrong os hash; re-chain everything after it so the chain stays valid.
    let prev: Uint8Array = GENESIS;
    let cps = 0;
    let badSeq = -1;
    const out: Array<{ encoded: Uint8Array; hash: Uint8Array }> = [];
    for (const b of all) {
      const d = decodeEntry(b);
      if (!d.ok) throw new Error('bad entry');
      const e = { ...d.value, prev };
      if (e.kind === Kind.Checkpoint && ++cps === 2) {
        const v = decodeValue(e.payload);
        if (!v.ok || !isMap(v.value) || !isMap(v.value.states)) throw new Error('bad checkpoint');
        e.payload = encodeValue({ ...v.value, states: { ...v.value.states, os: new Uint8Array(32).fill(7) } });
        badSeq = e.seq;
      }
      const enc = encodeEntry(e);
      const h = entryHash(enc);
      out.push({ encoded: enc, hash: h });
      prev = h;
    }
    expect(badSeq).toBeGreaterThan(0);
    const path = join(dir, 'div.orbtrace');
    const w = TraceWriter.open(path, { deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), k: 8 }).writer;
    w.append(out);
    w.close();
    const rep = await replayTrace(path);
    expect(rep.verify.ok).toBe(true);
    expect(rep.ok).toBe(false);
    expect(rep.divergence).toMatchObject({ seq: badSeq, domain: 'os' });
    expect(rep.divergence!.since).toBeGreaterThan(0);
    expect(rep.divergence!.since).toBeLessThan(badSeq);
    expect(rep.divergence!.entries.every((e) => e.seq > rep.divergence!.since && e.seq < badSeq)).toBe(true);
    expect(rep.divergence!.changes.some((c) => /kv/.test(c.path))).toBe(true);
    // The CLI says it with exit 1 (the OS side disagrees with its own log).
    const cli = spawnSync(process.execPath, [BIN, 'replay', path], { encoding: 'utf8' });
    expect(cli.status).toBe(1);
    expect(cli.stdout).toMatch(new RegExp(`checkpoint at seq ${badSeq}`));

    // A damaged byte in the middle: the chain check names the entry, replay stops before it.
    const bytes = readFileSync(path);
    let off = 64;
    for (let i = 0; i < 5; i++) off += 4 + bytes.readUInt32LE(off) + 32;
    const bad = Buffer.from(bytes);
    bad[off + 4 + 64 + 2] ^= 0x01; // a payload byte of entry 5
    const damaged = join(dir, 'damaged.orbtrace');
    writeFileSync(damaged, bad);
    const rd = await replayTrace(damaged);
    expect(rd.verify.ok).toBe(false);
    expect(rd.verify.failure?.seq).toBe(5);
    expect(rd.replayed).toBe(5);
    const vt = spawnSync(process.execPath, [BIN, '--json', 'verify-trace', damaged], { encoding: 'utf8' });
    expect(vt.status).toBe(1);
    expect(JSON.parse(vt.stdout.trim().split('\n').pop()!)).toMatchObject({ ok: false, failure: { seq: 5 } });
  });
});
