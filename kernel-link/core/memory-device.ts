// A LinkDevice held in memory over the axiom Sequencer: the reference device for kernel-link's
// own tests, the conformance suite's self-test and the benchmark's baseline. It can reboot
// (same log, new boot id: crash recovery of docs/axiom.md section 8) or lose its log (a guest
// kernel without a disk).
import { decodeEntry, entryHash, GENESIS } from '../../axiom/entry.ts';
import { Sequencer } from '../../axiom/sequencer.ts';
import type { Proposal } from '../../axiom/types.ts';
import type { DeviceInfo, LinkDevice, ProposeOutcome } from './device.ts';

export interface MemoryDeviceOptions {
  deviceId?: Uint8Array;
  /** Boot ids come from here (randomness enters pure code as an argument). */
  nextBootId?: () => Uint8Array;
  os?: string;
  k?: number;
}

let counter = 0;
const countingId = (tag: number) => () => { counter++; const b = new Uint8Array(16); b[0] = tag; for (let i = 0; i < 8; i++) b[8 + i] = Math.floor(counter / 256 ** i) & 0xff; return b; };

export class MemoryDevice implements LinkDevice {
  readonly deviceId: Uint8Array;
  readonly os: string;
  private readonly nextBootId: () => Uint8Array;
  private readonly k: number | undefined;
  seq!: Sequencer;
  bootId!: Uint8Array;
  readonly log: Uint8Array[] = [];
  private headHash: Uint8Array = GENESIS;
  private readonly appendListeners = new Set<() => void>();
  private readonly consoleListeners = new Set<(b: Uint8Array) => void>();
  /** Console input received from hosts (a person typing); the last 64 KiB. */
  readonly input: Uint8Array[] = [];

  constructor(opts: MemoryDeviceOptions = {}) {
    this.deviceId = opts.deviceId ?? countingId(0xde)();
    this.nextBootId = opts.nextBootId ?? countingId(0xb0);
    this.os = opts.os ?? 'orbital-memory 0.1';
    this.k = opts.k;
    this.boot();
  }

  /** Starts a new boot: replays the existing log into a fresh sequencer, appends BOOT (+ aborted receipts). */
  boot(): void {
    this.bootId = this.nextBootId();
    const s = new Sequencer({ deviceId: this.deviceId, bootId: this.bootId, os: this.os, ...(this.k ? { k: this.k } : {}) });
    let hash: Uint8Array = GENESIS;
    for (const enc of this.log) {
      const d = decodeEntry(enc);
      if (!d.ok) throw new Error(`memory device log is corrupt at ${this.log.indexOf(enc)}: ${d.error.message}`);
      hash = entryHash(enc);
      s.restore(hash, d.value);
    }
    this.seq = s;
    this.append(s.boot().map((a) => a.encoded), s.head);
    this.print(`${this.os} boot ${this.bootId[8]}: ${this.log.length} entries\n`);
  }

  /** Loses the whole log (a device without storage rebooting). */
  wipe(): void { this.log.length = 0; this.headHash = GENESIS; this.boot(); }

  print(text: string | Uint8Array): void {
    const b = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    for (const l of this.consoleListeners) l(b);
  }

  private append(encoded: Uint8Array[], head: Uint8Array): void {
    if (!encoded.length) return;
    this.log.push(...encoded);
    this.headHash = head;
    for (const l of this.appendListeners) l();
  }

  info(): DeviceInfo {
    return { deviceId: this.deviceId, bootId: this.bootId, os: this.os, head: this.log.length, headHash: this.headHash };
  }

  propose(p: Proposal): ProposeOutcome {
    const r = this.seq.propose(p);
    this.append(r.entries.map((a) => a.encoded), this.seq.head);
    if (r.status === 'committed') return { status: 'committed', seq: r.seq, receiptSeq: r.receiptSeq };
    if (r.status === 'rejected') return { status: 'rejected', seq: r.seq, reason: r.reason, detail: r.detail };
    return { status: 'duplicate', of: r.of, seq: r.seq, ...(r.receiptSeq !== undefined ? { receiptSeq: r.receiptSeq } : {}) };
  }

  read(from: number, max: number): Uint8Array[] { return this.log.slice(from, from + max); }

  onAppend(listener: () => void): () => void { this.appendListeners.add(listener); return () => this.appendListeners.delete(listener); }
  onConsole(listener: (b: Uint8Array) => void): () => void { this.consoleListeners.add(listener); return () => this.consoleListeners.delete(listener); }
  consoleInput(bytes: Uint8Array): void {
    this.input.push(bytes.slice());
    this.inputBytes += bytes.length;
    while (this.inputBytes > 65536 && this.input.length > 1) this.inputBytes -= this.input.shift()!.length; // bounded
  }
  private inputBytes = 0;
}
