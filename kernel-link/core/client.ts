// The host side of a link (docs/kernel-link.md sections 4-7): handshake, propose with retry,
// the entry stream with credit, gap repair, resume after reconnect or reboot, keepalive, console
// lines. Pure: the clock and the way to (re)connect come in as arguments; kernel-link/node/client.ts
// wires Node's timers and sockets.
import { GENESIS, prevOf, u64At } from '../../axiom/entry.ts';
import { blake3, equalBytes } from '../../axiom/hash.ts';
import { decodeValue, getInt, getBytes, getStr, isMap } from '../../axiom/value.ts';
import { Kind, type Proposal, type ValueMap } from '../../axiom/types.ts';
import type { Clock, TimerHandle } from './clock.ts';
import { LineAssembler, LINE_IDLE_MS, type ConsoleLine } from './console.ts';
import type { Crc32 } from './crc32.ts';
import { LinkError } from './errors.ts';
import { encodeFrame, FRAME_OVERHEAD, FrameDecoder, HARD_MAX_PAYLOAD, PRE_HANDSHAKE_MAX_PAYLOAD, type DropInfo, type FindByte, type Alloc } from './frame.ts';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, type Message, type Welcome } from './messages.ts';
import type { Transport } from './transport.ts';

export interface ClientOptions {
  /** Opens a fresh transport to the device (called again for every reconnect). */
  connect: () => Promise<Transport>;
  clock: Clock;
  client?: string;
  /** Actor used when a proposal does not name one (1 = the session, 2 = the lab). */
  actor?: number;
  /** Stream entries (default true). */
  subscribe?: boolean;
  /** Resume state from an earlier run: the last entry held (seq and hash) and the boot id known. */
  resume?: { lastSeq: number; lastHash: Uint8Array; boot?: Uint8Array };
  /** Check every entry's prev against the hash of the one before (default true; needs initAxiom() for speed). */
  verifyChain?: boolean;
  window?: number;
  /**
   * Lend entries instead of giving them (default false). An EntryEvent (its `encoded` and `hash`)
   * is then valid only while the onEntry listener runs: copy what you keep. The client reuses its
   * read and frame memory, so a long stream allocates almost nothing per entry (no GC of frames):
   * for consumers that use each entry at once (write it out, count it, reduce it). The Node
   * client then also reads its socket into one reused buffer. Receipts are kept (copied) only
   * for commits by actors this client proposed as, or that someone awaits.
   */
  transientEntries?: boolean;
  consoleWindow?: number;
  requestTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  helloRetryMs?: number;
  keepaliveMs?: number;
  deadAfterMs?: number;
  stallMs?: number;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  reconnectDelayMs?: number;
  /** Give up after this many failed reconnects in a row (default: never). */
  maxReconnects?: number;
  crc32?: Crc32;
  findByte?: FindByte;
  /** Allocation of frame buffers (kernel-link/node injects an unzeroed one). */
  alloc?: Alloc;
}

export type ClientEvent =
  | { t: 'connected'; welcome: Welcome }
  | { t: 'disconnected'; error: LinkError }
  | { t: 'boot'; boot: Uint8Array; previous: Uint8Array | null }
  | { t: 'new-log'; reason: string }
  | { t: 'resubscribe'; from: number; reason: string }
  | { t: 'drop'; info: DropInfo }
  | { t: 'device-error'; code: string; detail: string }
  | { t: 'bad-message'; detail: string }
  | { t: 'closed-by-device'; reason: string; detail: string }
  /** An onEntry/onConsole listener threw: the link carries on (the error is here, not thrown into the transport). */
  | { t: 'listener-error'; error: unknown };

export interface ProposeReply {
  status: 'committed' | 'rejected';
  seq: number;
  /** The RECEIPT's seq when the device already wrote it, else -1. */
  receiptSeq: number;
  reason: string;
  detail: string;
  /** The device had decided this (actor, id) before: a retry, answered from the log. */
  duplicate: boolean;
}

export interface Receipt { seq: number; commit: number; outcome: string; result: Uint8Array; resultHash: Uint8Array }

export interface EntryEvent { seq: number; encoded: Uint8Array; /** BLAKE3 of `encoded` (computed on first use). */ readonly hash: Uint8Array; kind: number }

class LazyEntryEvent implements EntryEvent {
  private h: Uint8Array | null = null;
  constructor(readonly seq: number, readonly encoded: Uint8Array, readonly kind: number, private readonly owner: LinkClient) {}
  get hash(): Uint8Array {
    if (!this.h) this.h = this.owner.seq === this.seq ? this.owner.lastHash : blake3(this.encoded);
    return this.h;
  }
}

type ProposalIn = Omit<Proposal, 'actor' | 'time'> & { actor?: number; time?: number };

interface PendingProposal {
  p: Proposal;
  rid: number;
  sent: boolean;
  attempts: number;
  resolve(r: ProposeReply): void;
  reject(e: LinkError): void;
  deadline: TimerHandle;
  retry: TimerHandle | null;
}

const RECENT_RECEIPTS = 4096;

// A RECEIPT payload is a map whose first key is `commit` (keys sort: commit, outcome, result, result_hash).
const COMMIT_KEY = [0x63, 0x6f, 0x6d, 0x6d, 0x69, 0x74];
function receiptCommit(e: Uint8Array): number | undefined {
  const p = 64;
  if (e.length < p + 24 || e[p] !== 0x08 || e[p + 5] !== 6 || e[p + 6] !== 0 || e[p + 7] !== 0 || e[p + 8] !== 0) return undefined;
  for (let i = 0; i < 6; i++) if (e[p + 9 + i] !== COMMIT_KEY[i]) return undefined;
  if (e[p + 15] !== 0x03) return undefined;
  const v = new DataView(e.buffer, e.byteOffset + p + 16, 8).getBigInt64(0, true);
  return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}
function decodeReceipt(seq: number, commit: number, e: Uint8Array): Receipt {
  const v = decodeValue(e.subarray(64));
  const m = v.ok && isMap(v.value) ? (v.value as ValueMap) : {};
  return { seq, commit, outcome: getStr(m, 'outcome') ?? '', result: getBytes(m, 'result') ?? new Uint8Array(0), resultHash: getBytes(m, 'result_hash') ?? new Uint8Array(0) };
}
const MIN_WINDOW = 1024;

export class LinkClient {
  readonly opts: Required<Omit<ClientOptions, 'resume' | 'crc32' | 'findByte' | 'alloc' | 'maxReconnects'>> & Pick<ClientOptions, 'resume' | 'crc32' | 'findByte' | 'alloc' | 'maxReconnects'>;
  private transport: Transport | null = null;
  private decoder: FrameDecoder;
  private state: 'idle' | 'connecting' | 'handshaking' | 'open' | 'closed' = 'idle';
  welcome: Welcome | null = null;
  private knownBoot: Uint8Array | null;
  /** The seq of the next entry this client expects (= entries held). */
  next: number;
  /** The seq of the last entry held (-1 when none). */
  get seq(): number { return this.next - 1; }
  /** Entry next-1 (its hash is computed only when needed: verifying the next one, or resuming). */
  private lastEntry: Uint8Array | null = null;
  private lastHashKnown: Uint8Array | null;
  /** Hash of entry next-1. */
  get lastHash(): Uint8Array {
    if (!this.lastHashKnown) this.lastHashKnown = blake3(this.lastEntry!);
    return this.lastHashKnown;
  }
  private setLast(e: Uint8Array | null, hash: Uint8Array | null): void { this.lastEntry = e; this.lastHashKnown = hash; }
  private nextRid = 1;
  private helloRid = 0;
  private helloTimer: TimerHandle | null = null;
  private handshakeDeadline: TimerHandle | null = null;
  private keepTimer: TimerHandle | null = null;
  private reconnectTimer: TimerHandle | null = null;
  private lineTimer: TimerHandle | null = null;
  private lastSent = 0;
  private lastHeard = 0;
  private pingRid = 0;
  private deviceHead = 0;
  private stream: { rid: number; consumed: number; limit: number; at: number; got: boolean; lastProgress: number } | null = null;
  private resubTimer: TimerHandle | null = null;
  /** The entries window now: halved on every damaged or missing frame, grown back as frames arrive
   * (a noisy line gets smaller frames, which are more likely to arrive whole). */
  private window: number;
  private readonly proposals = new Map<number, PendingProposal>(); // by rid
  private readonly queue: PendingProposal[] = []; // waiting for a request slot or a connection
  private readonly receiptWaiters = new Map<number, Array<(r: Receipt) => void>>();
  private readonly recentReceipts = new Map<number, { seq: number; encoded: Uint8Array }>();
  private readonly entryListeners = new Set<(e: EntryEvent) => void>();
  private readonly consoleListeners = new Set<(l: ConsoleLine) => void>();
  private readonly eventListeners = new Set<(e: ClientEvent) => void>();
  private readonly lines: LineAssembler;
  private firstConnect: { resolve(): void; reject(e: LinkError): void } | null = null;
  private failedReconnects = 0;
  readonly stats = { framesIn: 0, framesOut: 0, drops: 0, entries: 0, duplicatesSkipped: 0, resubscribes: 0, reconnects: 0, textBytes: 0, badMessages: 0, listenerErrors: 0 };

  constructor(opts: ClientOptions) {
    this.opts = {
      client: 'orbital', actor: 1, subscribe: true, verifyChain: true, transientEntries: false, window: 262_144, consoleWindow: 65_536,
      requestTimeoutMs: 2000, handshakeTimeoutMs: 10_000, helloRetryMs: 500, keepaliveMs: 1000, deadAfterMs: 5000, stallMs: 2000,
      reconnect: true, reconnectDelayMs: 100, ...opts,
    };
    this.decoder = new FrameDecoder({ maxFrame: HARD_MAX_PAYLOAD, ...(opts.crc32 ? { crc32: opts.crc32 } : {}), ...(opts.findByte ? { findByte: opts.findByte } : {}), ...(opts.alloc ? { alloc: opts.alloc } : {}), reuseBody: opts.transientEntries === true });
    this.next = opts.resume ? opts.resume.lastSeq + 1 : 0;
    this.lastHashKnown = opts.resume ? opts.resume.lastHash : GENESIS;
    this.knownBoot = opts.resume?.boot ?? null;
    this.window = this.opts.window;
    this.lines = new LineAssembler((l) => { for (const f of this.consoleListeners) this.call(f, l); });
  }

  // ---- public API ----

  /** Connects and handshakes. Rejects with a LinkError (timeout, disconnected, protocol/version-mismatch). */
  connect(): Promise<void> {
    if (this.state !== 'idle') return Promise.reject(new LinkError('bug', 'internal', 'connect() called twice'));
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      void this.open();
    });
  }

  get connected(): boolean { return this.state === 'open'; }
  get device(): Welcome | null { return this.welcome; }

  onEntry(fn: (e: EntryEvent) => void): () => void { this.entryListeners.add(fn); return () => this.entryListeners.delete(fn); }
  onConsole(fn: (l: ConsoleLine) => void): () => void { this.consoleListeners.add(fn); return () => this.consoleListeners.delete(fn); }
  onEvent(fn: (e: ClientEvent) => void): () => void { this.eventListeners.add(fn); return () => this.eventListeners.delete(fn); }

  /**
   * Proposes an action; resolves when the device committed or rejected it. Lost requests or answers
   * are retried with the same (actor, id) until `timeoutMs` (default 30 s), across reconnects.
   */
  propose(input: ProposalIn, timeoutMs = 30_000): Promise<ProposeReply> {
    if (this.state === 'closed') return Promise.reject(new LinkError('disconnected', 'closed', 'the link is closed'));
    const p: Proposal = { actor: input.actor ?? this.opts.actor, id: input.id, domain: input.domain, action: input.action, args: input.args, time: input.time ?? 0 };
    this.proposedActors.add(p.actor);
    const size = (() => { try { return encodeMessage({ t: 'propose', rid: 1, proposal: p }).payload.length; } catch (e) { return -1; } })();
    if (size < 0) return Promise.reject(new LinkError('bad-input', 'bad-message', `proposal ${p.action}: its args cannot be encoded as an Axiom value`));
    const limit = this.welcome?.maxFrame ?? PRE_HANDSHAKE_MAX_PAYLOAD;
    if (size > Math.max(limit, PRE_HANDSHAKE_MAX_PAYLOAD)) return Promise.reject(new LinkError('bad-input', 'too-large', `proposal ${p.action} is ${size} bytes; the device accepts at most ${limit}`));
    return new Promise((resolve, reject) => {
      const pp: PendingProposal = {
        p, rid: 0, sent: false, attempts: 0, resolve, reject, retry: null,
        deadline: this.opts.clock.setTimeout(() => this.failProposal(pp, new LinkError('timeout', 'request', `proposal ${p.action} (actor ${p.actor}, id ${p.id}) got no answer in ${timeoutMs} ms; it may or may not have been committed - propose it again with the same id to find out`)), timeoutMs),
      };
      this.queue.push(pp);
      this.pumpProposals();
    });
  }

  /** Resolves with the RECEIPT of the COMMIT at `commitSeq` (read from the entry stream). */
  receipt(commitSeq: number, timeoutMs = 30_000): Promise<Receipt> {
    const known = this.recentReceipts.get(commitSeq);
    if (known) return Promise.resolve(decodeReceipt(known.seq, commitSeq, known.encoded));
    return new Promise((resolve, reject) => {
      const list = this.receiptWaiters.get(commitSeq) ?? [];
      const timer = this.opts.clock.setTimeout(() => {
        const l = this.receiptWaiters.get(commitSeq);
        if (l) { l.splice(l.indexOf(w), 1); if (!l.length) this.receiptWaiters.delete(commitSeq); }
        reject(new LinkError('timeout', 'request', `no RECEIPT for commit ${commitSeq} within ${timeoutMs} ms${this.opts.subscribe ? '' : ' (this client does not subscribe to entries)'}`));
      }, timeoutMs);
      const w = (r: Receipt) => { this.opts.clock.clearTimeout(timer); resolve(r); };
      list.push(w);
      this.receiptWaiters.set(commitSeq, list);
    });
  }

  /** Ends the session (CLOSE normal) and stops reconnecting. Pending requests fail with 'disconnected'. */
  close(reason = 'normal', detail = ''): void {
    if (this.state === 'closed') return;
    if (this.transport && !this.transport.closed) this.sendMsg({ t: 'close', reason, detail });
    this.state = 'closed';
    this.stopTimers();
    this.lines.flush();
    const err = new LinkError('disconnected', 'closed', 'the link was closed by this client');
    for (const pp of [...this.proposals.values(), ...this.queue]) this.failProposal(pp, err);
    this.firstConnect?.reject(err); this.firstConnect = null;
    this.transport?.close();
    this.transport = null;
  }

  // ---- connection lifecycle ----

  private emit(e: ClientEvent): void { for (const f of this.eventListeners) { try { f(e); } catch { /* an event listener's own bug */ } } }
  private call<T>(f: (x: T) => void, x: T): void { try { f(x); } catch (error) { this.stats.listenerErrors++; this.emit({ t: 'listener-error', error }); } }
  private now(): number { return this.opts.clock.now(); }
  private clear(h: TimerHandle | null): null { if (h !== null) this.opts.clock.clearTimeout(h); return null; }
  private stopTimers(): void {
    this.helloTimer = this.clear(this.helloTimer); this.handshakeDeadline = this.clear(this.handshakeDeadline);
    this.keepTimer = this.clear(this.keepTimer); this.reconnectTimer = this.clear(this.reconnectTimer);
    this.resubTimer = this.clear(this.resubTimer); this.lineTimer = this.clear(this.lineTimer);
  }

  private async open(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    let t: Transport;
    try {
      t = await this.opts.connect();
    } catch (e) {
      const err = e instanceof LinkError ? e : new LinkError('disconnected', 'connect', `cannot connect: ${String(e)}`);
      return this.lost(err);
    }
    if ((this.state as string) === 'closed') { t.close(); return; }
    this.transport = t;
    this.decoder.reset();
    this.stream = null;
    this.state = 'handshaking';
    this.lastHeard = this.now();
    t.attach({
      data: (c) => { if (this.transport === t) this.onData(c, t.reusesChunks === true); },
      close: (err) => { if (this.transport === t) this.lost(err ?? new LinkError('disconnected', 'closed', `${t.name}: connection closed`)); },
    });
    this.sendHello();
    this.handshakeDeadline = this.opts.clock.setTimeout(() => {
      this.lost(new LinkError('timeout', 'handshake', `${t.name}: no WELCOME within ${this.opts.handshakeTimeoutMs} ms - is an Orbital device (protocol v${PROTOCOL_VERSION}) on the other end, and booted?`));
    }, this.opts.handshakeTimeoutMs);
  }

  private sendHello(): void {
    this.helloTimer = this.clear(this.helloTimer);
    this.helloRid = this.rid();
    this.sendMsg({ t: 'hello', rid: this.helloRid, min: PROTOCOL_VERSION, max: PROTOCOL_VERSION, client: this.opts.client, maxFrame: HARD_MAX_PAYLOAD, consoleWindow: this.opts.consoleWindow, caps: [] });
    this.helloTimer = this.opts.clock.setTimeout(() => { if (this.state === 'handshaking') this.sendHello(); }, this.opts.helloRetryMs);
  }

  /** The connection is gone: fail or reconnect. */
  private lost(err: LinkError): void {
    if (this.state === 'closed') return;
    const was = this.state;
    this.stopTimers();
    const t = this.transport; this.transport = null;
    t?.close();
    this.stream = null;
    for (const pp of this.proposals.values()) { pp.sent = false; pp.retry = this.clear(pp.retry); this.queue.unshift(pp); }
    this.proposals.clear();
    this.lines.flush();
    if (was === 'open' || was === 'handshaking') this.emit({ t: 'disconnected', error: err });
    const fatal = err.code === 'version-mismatch';
    // Before the first handshake succeeded, give up after a few attempts and tell the caller.
    const limit = this.firstConnect ? (this.opts.maxReconnects ?? 3) : (this.opts.maxReconnects ?? Infinity);
    if (fatal || !this.opts.reconnect || this.failedReconnects >= limit) {
      this.state = 'closed';
      this.firstConnect?.reject(err); this.firstConnect = null;
      for (const pp of [...this.queue]) this.failProposal(pp, err);
      return;
    }
    this.failedReconnects++;
    this.stats.reconnects++;
    this.state = 'connecting';
    const delay = Math.min(2000, this.opts.reconnectDelayMs * 2 ** Math.min(this.failedReconnects - 1, 5));
    this.reconnectTimer = this.opts.clock.setTimeout(() => { this.reconnectTimer = null; void this.open(); }, delay);
  }

  private rid(): number { const r = this.nextRid; this.nextRid = this.nextRid >= 0xffffffff ? 1 : this.nextRid + 1; return r; }

  private sendMsg(m: Message): void {
    const t = this.transport;
    if (!t || t.closed) return;
    const { type, payload } = encodeMessage(m);
    t.write(encodeFrame(type, payload, { ...(this.opts.crc32 ? { crc32: this.opts.crc32 } : {}), ...(this.opts.findByte ? { findByte: this.opts.findByte } : {}), ...(this.opts.alloc ? { alloc: this.opts.alloc } : {}) }));
    this.stats.framesOut++;
    this.lastSent = this.now();
  }

  // ---- receiving ----

  private readonly sink = {
    text: (b: Uint8Array) => {
      this.stats.textBytes += b.length;
      this.lines.push(b, this.now());
      this.lineTimer = this.clear(this.lineTimer);
      if (this.lines.pending) this.lineTimer = this.opts.clock.setTimeout(() => { this.lineTimer = null; this.lines.flush(); }, LINE_IDLE_MS);
    },
    frame: (type: number, payload: Uint8Array) => {
      this.stats.framesIn++;
      const d = decodeMessage(type, payload);
      if (!d.ok) { this.stats.badMessages++; this.emit({ t: 'bad-message', detail: d.error.detail }); return; }
      this.onMessage(d.msg, FRAME_OVERHEAD + payload.length);
    },
    drop: (info: DropInfo) => {
      this.stats.drops++;
      this.emit({ t: 'drop', info });
      if (this.stream) { this.shrinkWindow(); this.resubscribe(`a damaged frame (${info.reason})`); }
    },
  };

  private onData(c: Uint8Array, lent: boolean): void {
    this.lastHeard = this.now();
    // The decoder hands out views of the chunk; entries that are given must not be lent memory.
    this.decoder.push(lent && !this.opts.transientEntries ? c.slice() : c, this.sink);
  }

  private onMessage(m: Message, size: number): void {
    switch (m.t) {
      case 'welcome': return this.onWelcome(m);
      case 'pong':
        this.deviceHead = m.head;
        if (this.stream && m.head <= this.next) this.stream.lastProgress = this.now();
        if (this.stream && m.head > this.next && this.now() - this.stream.lastProgress > this.opts.stallMs) this.resubscribe('no progress while the device holds more entries');
        return;
      case 'result': return this.onResult(m);
      case 'error': return this.onError(m);
      case 'entries': return this.onEntries(m, size);
      case 'console': return this.sink.text(m.text);
      case 'close':
        this.emit({ t: 'closed-by-device', reason: m.reason, detail: m.detail });
        return this.lost(new LinkError('disconnected', 'closed-by-peer', `the device closed the session: ${m.reason}${m.detail ? ` (${m.detail})` : ''}`));
      default:
        this.stats.badMessages++;
        this.emit({ t: 'bad-message', detail: `a device does not send ${m.t.toUpperCase()}` });
    }
  }

  private onWelcome(w: Welcome): void {
    if (this.state === 'open' && w.rid === 0) {
      // The device (re)booted or lost our session: handshake again.
      this.state = 'handshaking';
      this.stream = null;
      for (const pp of this.proposals.values()) { pp.sent = false; pp.retry = this.clear(pp.retry); this.queue.unshift(pp); }
      this.proposals.clear();
      this.sendHello();
      return;
    }
    if (this.state !== 'handshaking' || w.rid === 0) return; // an announcement while we wait for our own answer
    if (w.version !== PROTOCOL_VERSION) return this.versionMismatch(`the device answered with version ${w.version}, this client speaks ${PROTOCOL_VERSION}`);
    this.helloTimer = this.clear(this.helloTimer);
    this.handshakeDeadline = this.clear(this.handshakeDeadline);
    this.welcome = w;
    this.deviceHead = w.head;
    this.state = 'open';
    this.failedReconnects = 0;
    if (!this.knownBoot || !equalBytes(this.knownBoot, w.boot)) {
      const previous = this.knownBoot;
      this.knownBoot = w.boot;
      if (previous) this.emit({ t: 'boot', boot: w.boot, previous });
    }
    this.emit({ t: 'connected', welcome: w });
    if (this.opts.subscribe && w.caps.includes('entries')) this.subscribe('handshake');
    this.startKeepalive();
    this.pumpProposals();
    this.firstConnect?.resolve(); this.firstConnect = null;
  }

  private versionMismatch(detail: string): void {
    this.sendMsg({ t: 'close', reason: 'version', detail });
    this.lost(new LinkError('protocol', 'version-mismatch', `protocol version mismatch: ${detail}`));
  }

  private onError(m: Extract<Message, { t: 'error' }>): void {
    if (m.rid !== 0 && m.rid === this.helloRid && m.code === 'version') return this.versionMismatch(m.detail);
    const pp = this.proposals.get(m.rid);
    if (pp) {
      // busy / internal / no-session: the proposal was not decided; retry it.
      this.proposals.delete(m.rid);
      pp.sent = false; pp.retry = this.clear(pp.retry);
      this.queue.unshift(pp);
      if (m.code === 'no-session' && this.state === 'open') { this.state = 'handshaking'; this.sendHello(); return; }
      this.opts.clock.setTimeout(() => this.pumpProposals(), m.code === 'busy' ? 20 : 100);
      return;
    }
    if (this.stream && m.rid === this.stream.rid) {
      if (m.code === 'ahead' || m.code === 'diverged') {
        this.emit({ t: 'new-log', reason: `${m.code}: ${m.detail}` });
        this.next = 0; this.setLast(null, GENESIS);
        this.stream = null;
        return this.subscribe('new log');
      }
      if (m.code === 'no-session') { this.state = 'handshaking'; this.sendHello(); return; }
      this.stream = null;
    }
    this.emit({ t: 'device-error', code: m.code, detail: m.detail });
  }

  // ---- entries ----

  private subscribe(reason: string): void {
    this.resubTimer = this.clear(this.resubTimer);
    if (this.state !== 'open') return;
    const rid = this.rid();
    const now = this.now();
    this.stream = { rid, consumed: 0, limit: this.window, at: now, got: false, lastProgress: now };
    if (reason !== 'handshake') { this.stats.resubscribes++; this.emit({ t: 'resubscribe', from: this.next, reason }); }
    this.sendMsg({ t: 'subscribe', rid, from: this.next, prev: this.lastHash, window: this.window });
  }

  /** Restart the stream from the next entry we need (rate-limited: one per 50 ms). */
  private resubscribe(reason: string): void {
    if (this.state !== 'open' || this.resubTimer !== null) return;
    const wait = this.stream ? this.stream.at + 50 - this.now() : 0;
    if (wait <= 0) return this.subscribe(reason);
    this.resubTimer = this.opts.clock.setTimeout(() => { this.resubTimer = null; this.subscribe(reason); }, wait);
  }

  private onEntries(m: Extract<Message, { t: 'entries' }>, size: number): void {
    const s = this.stream;
    if (!s || m.stream !== s.rid) return; // an old stream's frame still in flight
    s.got = true;
    s.consumed += size;
    this.window = Math.min(this.opts.window, this.window + size);
    if (s.consumed + this.window - s.limit >= this.window / 2) {
      s.limit = Math.max(s.limit, s.consumed + this.window);
      this.sendMsg({ t: 'credit', stream: s.rid, limit: s.limit });
    }
    // `s`, not this.stream: the CREDIT just sent can lose the connection (a cut while writing),
    // which clears this.stream; the entries of this frame are still good and are taken.
    try { this.takeEntries(m, s); } finally { if (this.opts.transientEntries) this.keepLast(); }
  }

  private takeEntries(m: Extract<Message, { t: 'entries' }>, s: NonNullable<LinkClient['stream']>): void {
    for (let i = 0; i < m.entries.length; i++) {
      const seq = m.seq + i;
      if (seq < this.next) { this.stats.duplicatesSkipped++; continue; }
      if (seq > this.next) { this.shrinkWindow(); return this.resubscribe(`entries jumped from ${this.next} to ${seq}`); }
      const e = m.entries[i]!;
      if (e.length < 64 || (this.opts.verifyChain && !equalBytes(prevOf(e), this.lastHash))) return this.resubscribe(`entry ${seq} does not chain to the entry before it`);
      this.setLast(e, null);
      this.next = seq + 1;
      s.lastProgress = this.now();
      this.stats.entries++;
      const kind = e[1]!;
      if (kind === Kind.Receipt) this.noteReceipt(seq, e);
      else if (kind === Kind.Commit && this.opts.transientEntries && this.proposedActors.size && this.proposedActors.has(u64At(e, 20))) {
        this.myCommits.add(seq);
        if (this.myCommits.size > RECENT_RECEIPTS) this.myCommits.delete(this.myCommits.values().next().value!);
      }
      if (this.entryListeners.size) {
        const ev = new LazyEntryEvent(seq, e, kind, this);
        for (const f of this.entryListeners) this.call(f, ev);
      }
    }
  }

  /** Lent entries die with their frame: keep what the next frame or a resume needs of the last one. */
  private keepLast(): void {
    const e = this.lastEntry;
    if (!e || this.lastHashKnown || e.buffer === this.lastCopy.buffer) return;
    if (this.opts.verifyChain) { this.lastHashKnown = blake3(e); return; } // needed next anyway
    if (this.lastCopy.length < e.length) this.lastCopy = new Uint8Array(Math.max(e.length, 2 * this.lastCopy.length));
    this.lastCopy.set(e);
    this.lastEntry = this.lastCopy.subarray(0, e.length);
  }
  /** With transientEntries: the last entry's bytes, copied out of the frame (reused). */
  private lastCopy = new Uint8Array(0);
  /** Actors this client proposed as, and (with transientEntries) the seqs of their COMMITs seen. */
  private readonly proposedActors = new Set<number>();
  private readonly myCommits = new Set<number>();

  private shrinkWindow(): void { this.window = Math.max(MIN_WINDOW, Math.floor(this.window / 2)); }

  /** Indexes a RECEIPT by its commit seq; the payload is decoded only when someone asks. */
  private noteReceipt(seq: number, e: Uint8Array): void {
    const commit = receiptCommit(e);
    if (commit === undefined) return;
    const ws = this.receiptWaiters.get(commit);
    if (this.opts.transientEntries) {
      // Lent entries are copied only when someone may ask: a waiter now, or a commit of ours.
      if (!this.myCommits.delete(commit) && !ws) return;
      e = e.slice();
    }
    this.recentReceipts.set(commit, { seq, encoded: e });
    if (this.recentReceipts.size > RECENT_RECEIPTS) this.recentReceipts.delete(this.recentReceipts.keys().next().value!);
    if (ws) { this.receiptWaiters.delete(commit); const r = decodeReceipt(seq, commit, e); for (const w of ws) w(r); }
  }

  // ---- proposals ----

  private pumpProposals(): void {
    if (this.state !== 'open' || !this.welcome) return;
    while (this.queue.length && this.proposals.size < this.welcome.maxRequests) {
      const pp = this.queue.shift()!;
      this.sendProposal(pp);
    }
  }

  private sendProposal(pp: PendingProposal): void {
    pp.rid = this.rid(); pp.sent = true; pp.attempts++;
    this.proposals.set(pp.rid, pp);
    this.sendMsg({ t: 'propose', rid: pp.rid, proposal: pp.p });
    pp.retry = this.opts.clock.setTimeout(() => {
      pp.retry = null;
      if (this.proposals.get(pp.rid) !== pp) return;
      this.proposals.delete(pp.rid);
      if (this.state === 'open') this.sendProposal(pp); else { pp.sent = false; this.queue.unshift(pp); }
    }, this.opts.requestTimeoutMs * 2 ** Math.min(pp.attempts - 1, 4)); // back off: a slow line must not fill with retries
  }

  private onResult(m: Extract<Message, { t: 'result' }>): void {
    const pp = this.proposals.get(m.rid);
    if (!pp) return; // an answer to a request we already retried: the retry's answer will come
    this.proposals.delete(m.rid);
    pp.retry = this.clear(pp.retry);
    this.opts.clock.clearTimeout(pp.deadline);
    pp.resolve({ status: m.of, seq: m.seq, receiptSeq: m.receipt, reason: m.reason, detail: m.detail, duplicate: m.status === 'duplicate' });
    this.pumpProposals();
  }

  private failProposal(pp: PendingProposal, err: LinkError): void {
    this.opts.clock.clearTimeout(pp.deadline);
    pp.retry = this.clear(pp.retry);
    if (this.proposals.get(pp.rid) === pp) this.proposals.delete(pp.rid);
    const qi = this.queue.indexOf(pp);
    if (qi >= 0) this.queue.splice(qi, 1);
    pp.reject(err);
  }

  // ---- keepalive ----

  private startKeepalive(): void {
    this.keepTimer = this.clear(this.keepTimer);
    const tick = () => {
      this.keepTimer = null;
      if (this.state !== 'open') return;
      const now = this.now();
      if (now - this.lastHeard > this.opts.deadAfterMs) return this.lost(new LinkError('timeout', 'keepalive', `the device sent nothing for ${now - this.lastHeard} ms`));
      if (now - this.lastSent >= this.opts.keepaliveMs || (this.stream && now - this.stream.lastProgress > this.opts.stallMs)) {
        this.pingRid = this.rid();
        this.sendMsg({ t: 'ping', rid: this.pingRid });
        if (this.stream) this.sendMsg({ t: 'credit', stream: this.stream.rid, limit: this.stream.limit });
      }
      this.keepTimer = this.opts.clock.setTimeout(tick, Math.max(50, this.opts.keepaliveMs / 2));
    };
    this.keepTimer = this.opts.clock.setTimeout(tick, Math.max(50, this.opts.keepaliveMs / 2));
  }
}
