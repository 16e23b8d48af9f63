// Everything the page knows about one device, derived from its Axiom log alone: the entries
// (decoded once, hash-chain checked link by link), the live system/os states, the session view
// (scene state → frames), snapshots for seeking, and the console text from the link.
import {
  decodeEntry, decodeValue, entryHash, equalBytes, toHex, Replayer, Seeker, systemReducer, osReducer, stateHash,
  KIND_NAMES, DOMAIN_NAMES, Kind, type Entry, type Value,
} from '../../axiom/index.ts';
import { SessionView, sessionReducer, sceneHash } from '../../scene/index.ts';
import type { DeviceInfo } from '../bridge.ts';

export interface EntryRow {
  seq: number;
  entry: Entry;
  encoded: Uint8Array;
  hash: Uint8Array;
  payload: Value | undefined;
  /** Whether `prev` equals the hash of the entry before (seq 0: the genesis). */
  linked: boolean;
  summary: string;
}

const GENESIS = new Uint8Array(32);
const CONSOLE_LINES = 2000;

function short(v: Value | undefined, max = 48): string {
  const s = v === undefined ? '?' : JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `0x${toHex(x.subarray(0, 8))}${x.length > 8 ? '…' : ''}` : typeof x === 'bigint' ? String(x) : x));
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function summarize(e: Entry, p: Value | undefined): string {
  const m = p && typeof p === 'object' && !(p instanceof Uint8Array) && !Array.isArray(p) ? (p as Record<string, Value>) : null;
  if (!m) return 'payload does not decode';
  switch (e.kind) {
    case Kind.Boot: return `${String(m.os ?? '')} k=${String(m.k ?? '')}`;
    case Kind.Commit: return `${String(m.action)} ${short(m.args)}`;
    case Kind.Reject: return `${String(m.action)} ${String(m.reason)}: ${String(m.detail)}`;
    case Kind.Receipt: {
      const r = m.result instanceof Uint8Array ? new TextDecoder().decode(m.result.subarray(0, 64)) : '';
      return `#${String(m.commit)} ${String(m.outcome)} ${JSON.stringify(r).slice(0, 48)}`;
    }
    case Kind.Checkpoint: return `upto #${String(m.upto)}`;
    default: return '';
  }
}

/** What the session's windows read from a device: the live model, or the model as of a past entry. */
export interface ModelView {
  readonly rows: readonly EntryRow[];
  readonly brokenAt: number;
  readonly seq: number;
  readonly info: DeviceInfo;
  readonly consoleLines: string[];
  hashes(): Record<string, string>;
  hashesAt(seq: number): Record<string, string>;
  checkpoint(): { seq: number; matches: boolean } | null;
  kindName(e: Entry): string;
  domainName(e: Entry): string;
}

export class DeviceModel implements ModelView {
  readonly rows: EntryRow[] = [];
  readonly view = new SessionView();
  readonly live = new Replayer([systemReducer, osReducer]);
  readonly seeker = new Seeker([systemReducer, osReducer, sessionReducer], 64);
  consoleLines: string[] = [''];
  info: DeviceInfo;
  /** The first seq whose link to the previous entry is broken, or -1. */
  brokenAt = -1;
  /** Bumped on every change the UI shows. */
  version = 0;
  /** Entries that did not decode (never applied). */
  undecodable = 0;

  constructor(info: DeviceInfo) { this.info = info; }

  get seq(): number { return this.rows.length - 1; }

  /** Appends consecutive encoded entries; ones already held are skipped. Returns how many were new. */
  push(list: Uint8Array[]): number {
    let n = 0;
    for (const b of list) {
      const d = decodeEntry(b);
      if (!d.ok) { this.undecodable++; continue; }
      const e = d.value;
      if (e.seq < this.rows.length) continue;
      if (e.seq > this.rows.length) { this.undecodable++; continue; } // a gap: the host resends from its log
      const prevHash = this.rows.length ? this.rows[this.rows.length - 1]!.hash : GENESIS;
      const linked = equalBytes(e.prev, prevHash);
      if (!linked && this.brokenAt < 0) this.brokenAt = e.seq;
      const v = decodeValue(e.payload);
      const payload = v.ok ? v.value : undefined;
      this.rows.push({ seq: e.seq, entry: e, encoded: b, hash: entryHash(b), payload, linked, summary: summarize(e, payload) });
      this.live.apply(e);
      this.seeker.push(e);
      this.view.apply(e, payload);
      n++;
    }
    if (n) this.version++;
    return n;
  }

  addConsole(text: string): void {
    const parts = text.split('\n');
    this.consoleLines[this.consoleLines.length - 1] += parts[0]!;
    for (let i = 1; i < parts.length; i++) this.consoleLines.push(parts[i]!);
    if (this.consoleLines.length > CONSOLE_LINES) this.consoleLines.splice(0, this.consoleLines.length - CONSOLE_LINES);
    this.version++;
  }

  /** Live state hashes (hex) of system, os and session. */
  hashes(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.live.hashes())) out[k] = toHex(v);
    out.session = toHex(sceneHash(this.view.state));
    return out;
  }

  /** State hashes after entry `seq` (via snapshots: replays at most k entries). */
  hashesAt(seq: number): Record<string, string> {
    const r = this.seeker.stateAt(seq);
    const out: Record<string, string> = {};
    r.reducers.forEach((red, i) => { out[red.name] = toHex(stateHash(red, r.states[i])); });
    return out;
  }

  /** The newest CHECKPOINT (at or before `upto`) and whether its hashes equal this page's replay at that point. */
  checkpoint(upto = this.rows.length - 1): { seq: number; matches: boolean } | null {
    for (let i = Math.min(upto, this.rows.length - 1); i >= 0; i--) {
      const r = this.rows[i]!;
      if (r.entry.kind !== Kind.Checkpoint) continue;
      const states = (r.payload as Record<string, Value> | undefined)?.states as Record<string, Value> | undefined;
      if (!states) return { seq: r.seq, matches: false };
      const at = this.hashesAt(r.seq - 1);
      const matches = Object.entries(states).every(([k, h]) => h instanceof Uint8Array && at[k] === toHex(h));
      return { seq: r.seq, matches };
    }
    return null;
  }

  kindName(e: Entry): string { return KIND_NAMES[e.kind] ?? String(e.kind); }
  domainName(e: Entry): string { return DOMAIN_NAMES[e.domain] ?? String(e.domain); }
}

/**
 * The model as it was after entry `seq`: entries up to it, the state hashes there, and the console
 * as the log tells it (each `sh` command and its receipt's output — what the device printed).
 */
export function modelAt(m: DeviceModel, seq: number): ModelView {
  const rows = m.rows.slice(0, seq + 1);
  const lines: string[] = [];
  const sh = new Map<number, string>();
  for (const r of rows) {
    const p = r.payload as Record<string, Value> | undefined;
    if (!p) continue;
    if (r.entry.kind === Kind.Commit && r.entry.domain === 1 && p.action === 'sh') {
      const args = p.args as Record<string, Value> | undefined;
      sh.set(r.seq, String(args?.line ?? ''));
      lines.push(`$ ${String(args?.line ?? '')}`);
    } else if (r.entry.kind === Kind.Receipt && typeof p.commit === 'number' && sh.has(p.commit)) {
      const out = p.result instanceof Uint8Array ? new TextDecoder().decode(p.result) : '';
      if (out) lines.push(...out.split('\n'));
      if (p.outcome !== 'ok') lines.push(`(${String(p.outcome)})`);
    }
  }
  lines.push('');
  return {
    rows, seq, info: m.info, consoleLines: lines,
    brokenAt: m.brokenAt >= 0 && m.brokenAt <= seq ? m.brokenAt : -1,
    hashes: () => m.hashesAt(seq),
    hashesAt: (s) => m.hashesAt(Math.min(s, seq)),
    checkpoint: () => m.checkpoint(seq),
    kindName: (e) => m.kindName(e),
    domainName: (e) => m.domainName(e),
  };
}
