// The device side of a link (docs/kernel-link.md sections 4, 6, 8): answers a host's frames for a
// LinkDevice and streams its entries within the host's credit. Pure: no timers (a device only
// answers), so the hosted OS, tests and tools serve any Transport with it.
import { GENESIS, prevOf } from '../../axiom/entry.ts';
import { equalBytes } from '../../axiom/hash.ts';
import type { Crc32 } from './crc32.ts';
import type { LinkDevice, ProposeOutcome } from './device.ts';
import { encodeFrame, FRAME_OVERHEAD, FrameDecoder, HARD_MAX_PAYLOAD, PRE_HANDSHAKE_MAX_PAYLOAD, stuffText, type DropInfo, type FindByte, type Alloc } from './frame.ts';
import { decodeMessage, encodeMessage, MsgType, PROTOCOL_VERSION, type Message } from './messages.ts';
import type { Transport } from './transport.ts';
import { encodeEntriesFrame, entriesFrameAlloc } from './entries-frame.ts';

export interface ServeOptions {
  /** Largest payload this device accepts (stated in WELCOME). */
  maxFrame?: number;
  /** Requests handled at once (stated in WELCOME). */
  maxRequests?: number;
  /** Send the unsolicited WELCOME (rid 0) when the link comes up. Default true. */
  announce?: boolean;
  /** Send console output as CONSOLE frames within credit when the host grants some. Default false (raw text). */
  consoleFrames?: boolean;
  /** Entries read from the device per batch. */
  readBatch?: number;
  /**
   * Stop adding entries to an ENTRIES frame once its payload reaches this size (default 256 KiB):
   * small frames pipeline (the host decodes one while the next is on the wire) and fit in one
   * socket read, so the host can take them without copying. A larger entry still goes alone.
   */
  targetFrame?: number;
  crc32?: Crc32;
  /** Byte search for the codec (kernel-link/node/crc.ts nodeCodec has a native one). */
  findByte?: FindByte;
  /** Allocation of frame buffers (kernel-link/node injects an unzeroed one). */
  alloc?: Alloc;
  /** Called for every protocol event worth logging (bad frames, errors). */
  onEvent?(e: ServerEvent): void;
}

export type ServerEvent =
  | { t: 'drop'; info: DropInfo }
  | { t: 'bad-message'; detail: string }
  | { t: 'hello'; client: string; version: number }
  | { t: 'close'; reason: string; detail: string }
  | { t: 'internal'; detail: string };

interface Stream { rid: number; next: number; sent: number; limit: number; window: number }

/**
 * ENTRIES frame buffers that the transport has finished writing (Transport.write's `written`),
 * used again for later frames: a long stream then touches the same few warm buffers instead of
 * allocating (and page-faulting, and collecting) a fresh one per frame. A buffer is reused only
 * after its transport said so; with a transport that never says, every frame is a fresh one.
 */
export class FramePool {
  private readonly free: ArrayBuffer[] = [];
  /** Buffers this pool made (only those come back). */
  private readonly mine = new WeakSet<ArrayBufferLike>();
  /** Capacity of a pooled buffer: what encodeEntriesFrame asks for a target-size payload. */
  readonly cap: number;
  constructor(private readonly alloc: (n: number) => Uint8Array, targetFrame: number, private readonly keep = 16) {
    this.cap = entriesFrameAlloc(targetFrame + 64);
  }
  readonly get = (n: number): Uint8Array => {
    if (n > this.cap) return this.alloc(n); // a lone large entry: not worth keeping
    const b = this.free.pop();
    if (b) return new Uint8Array(b, 0, n);
    const fresh = this.alloc(this.cap);
    if (fresh.byteOffset !== 0 || fresh.buffer.byteLength !== this.cap) return fresh.subarray(0, n); // not a buffer of its own: never pooled
    this.mine.add(fresh.buffer);
    return fresh.subarray(0, n);
  };
  /** Takes back a frame (any view of a pooled buffer) the transport is done with. */
  put(frame: Uint8Array): void {
    if (this.mine.has(frame.buffer) && this.free.length < this.keep && !this.free.includes(frame.buffer as ArrayBuffer)) this.free.push(frame.buffer as ArrayBuffer);
  }
}

export interface LinkServer {
  /** Stops serving and closes the transport. */
  close(reason?: string, detail?: string): void;
  readonly stats: { framesIn: number; framesOut: number; drops: number; entriesOut: number };
}

/** Serves `device` over `transport` until the transport closes. */
export function serveLink(transport: Transport, device: LinkDevice, opts: ServeOptions = {}): LinkServer {
  const maxFrame = Math.max(PRE_HANDSHAKE_MAX_PAYLOAD, Math.min(opts.maxFrame ?? HARD_MAX_PAYLOAD, HARD_MAX_PAYLOAD));
  const maxRequests = Math.max(1, opts.maxRequests ?? 16);
  const readBatch = opts.readBatch ?? 256;
  const targetFrame = opts.targetFrame ?? 262144;
  const caps = ['entries', 'propose', ...(opts.consoleFrames ? ['console-frames'] : [])];
  const decoder = new FrameDecoder({ maxFrame, ...(opts.crc32 ? { crc32: opts.crc32 } : {}), ...(opts.findByte ? { findByte: opts.findByte } : {}), ...(opts.alloc ? { alloc: opts.alloc } : {}) });
  const codec = { ...(opts.crc32 ? { crc32: opts.crc32 } : {}), ...(opts.findByte ? { findByte: opts.findByte } : {}), ...(opts.alloc ? { alloc: opts.alloc } : {}) };
  const stats = { framesIn: 0, framesOut: 0, drops: 0, entriesOut: 0 };
  let session = false;
  let hostMaxFrame = PRE_HANDSHAKE_MAX_PAYLOAD;
  let stream: Stream | null = null;
  let consoleCredit = { sent: 0, limit: 0, window: 0 };
  let pending = 0;
  let done = false;
  // Entries read ahead of the credit, for the current stream.
  let ahead: { rid: number; seq: number; list: Uint8Array[] } | null = null;
  let pumping = false;
  let pumpAgain = false;
  const frames = new FramePool(opts.alloc ?? ((n) => new Uint8Array(n)), targetFrame);
  const framesCodec = { ...codec, alloc: frames.get };

  const sendFrame = (type: number, payload: Uint8Array): number => {
    const f = encodeFrame(type, payload, codec);
    transport.write(f);
    stats.framesOut++;
    return FRAME_OVERHEAD + payload.length;
  };
  const send = (m: Message) => { if (done) return; const { type, payload } = encodeMessage(m); sendFrame(type, payload); };
  const error = (rid: number, code: string, detail: string) => send({ t: 'error', rid, code, detail });

  const welcome = (rid: number) => {
    const i = device.info();
    send({ t: 'welcome', rid, version: PROTOCOL_VERSION, device: i.deviceId, boot: i.bootId, os: i.os, head: i.head, maxFrame, maxRequests, caps });
  };

  const pump = async (): Promise<void> => {
    if (pumping) { pumpAgain = true; return; }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        while (!done && stream) {
          const s = stream;
          if (!ahead || ahead.rid !== s.rid || ahead.seq !== s.next || ahead.list.length === 0) {
            if (s.next >= device.info().head) break;
            const list = await device.read(s.next, readBatch);
            if (stream !== s) continue; // replaced while reading
            if (!list.length) break;
            ahead = { rid: s.rid, seq: s.next, list };
          }
          // Fill one frame within the host's max_frame and the credit.
          const room = s.limit - s.sent;
          const nothingOutstanding = s.sent === s.limit - s.window;
          const budget = Math.min(hostMaxFrame, HARD_MAX_PAYLOAD);
          let n = 0, size = 64; // map, keys, seq and stream fields
          while (n < ahead.list.length) {
            const add = 5 + ahead.list[n]!.length;
            if (size + add > budget) break;
            if (n > 0 && size + add > targetFrame) break;
            if (FRAME_OVERHEAD + size + add > room && !(n === 0 && nothingOutstanding)) break;
            size += add; n++;
            if (FRAME_OVERHEAD + size > room) break; // the lone oversized frame goes alone
          }
          if (n === 0) {
            if (5 + ahead.list[0]!.length + 64 > budget) {
              // An entry the host cannot take: nothing sensible to do but say so and stop.
              error(s.rid, 'internal', `entry ${ahead.seq} (${ahead.list[0]!.length} bytes) exceeds the host's max_frame ${hostMaxFrame}`);
              stream = null;
            }
            break; // wait for credit
          }
          const batch = ahead.list.slice(0, n);
          const frame = encodeEntriesFrame(s.rid, s.next, batch, framesCodec);
          const plen = size - 8; // the payload: `size` counted its fixed fields as 64 bytes, they are 56
          transport.write(frame, () => frames.put(frame));
          stats.framesOut++;
          s.sent += FRAME_OVERHEAD + plen;
          stats.entriesOut += n;
          s.next += n;
          ahead = { rid: s.rid, seq: s.next, list: ahead.list.slice(n) };
          // Let the transport put this frame on the wire before encoding the next one.
          if (transport.ready) await transport.ready();
        }
      } while (pumpAgain && !done);
    } catch (e) {
      opts.onEvent?.({ t: 'internal', detail: `reading entries failed: ${String(e)}` });
      if (stream) { error(stream.rid, 'internal', `reading entries failed: ${String(e)}`); stream = null; }
    } finally {
      pumping = false;
    }
  };

  const propose = async (rid: number, m: Extract<Message, { t: 'propose' }>) => {
    pending++;
    let r: ProposeOutcome;
    try {
      r = await device.propose(m.proposal);
    } catch (e) {
      pending--;
      opts.onEvent?.({ t: 'internal', detail: `propose failed: ${String(e)}` });
      error(rid, 'internal', `the device failed to decide the proposal: ${String(e)}`);
      return;
    }
    pending--;
    if (r.status === 'committed') send({ t: 'result', rid, status: 'committed', of: 'committed', seq: r.seq, receipt: r.receiptSeq ?? -1, reason: '', detail: '' });
    else if (r.status === 'rejected') send({ t: 'result', rid, status: 'rejected', of: 'rejected', seq: r.seq, receipt: -1, reason: r.reason, detail: r.detail });
    else send({ t: 'result', rid, status: 'duplicate', of: r.of, seq: r.seq, receipt: r.receiptSeq ?? -1, reason: '', detail: '' });
    void pump();
  };

  let subscribeEpoch = 0;
  const subscribe = async (m: Extract<Message, { t: 'subscribe' }>) => {
    const epoch = ++subscribeEpoch;
    const i = device.info();
    stream = null; ahead = null;
    if (m.from > i.head) return error(m.rid, 'ahead', `the host asks from seq ${m.from} but this log ends at ${i.head} (a new log?)`);
    if (m.from < (i.first ?? 0)) return error(m.rid, 'gone', `entries before seq ${i.first} are no longer held`);
    let prev: Uint8Array;
    if (m.from === 0) prev = GENESIS;
    else if (m.from === i.head) prev = i.headHash;
    else {
      const e = await device.read(m.from, 1);
      if (!e.length) return error(m.rid, 'internal', `entry ${m.from} could not be read`);
      prev = prevOf(e[0]!);
    }
    if (!equalBytes(prev, m.prev)) return error(m.rid, 'diverged', `the host's entry ${m.from - 1} is not this log's`);
    if (epoch !== subscribeEpoch) return; // a newer SUBSCRIBE (or HELLO/CLOSE) replaced this one meanwhile
    stream = { rid: m.rid, next: m.from, sent: 0, limit: m.window, window: m.window };
    void pump();
  };

  const onMessage = (m: Message) => {
    switch (m.t) {
      case 'hello': {
        if (m.max < PROTOCOL_VERSION || m.min > PROTOCOL_VERSION) return error(m.rid, 'version', `device speaks ${PROTOCOL_VERSION}..${PROTOCOL_VERSION}, the host ${m.min}..${m.max}`);
        session = true; stream = null; ahead = null; subscribeEpoch++;
        hostMaxFrame = Math.min(Math.max(m.maxFrame, PRE_HANDSHAKE_MAX_PAYLOAD), HARD_MAX_PAYLOAD);
        consoleCredit = { sent: 0, limit: m.consoleWindow, window: m.consoleWindow };
        opts.onEvent?.({ t: 'hello', client: m.client, version: PROTOCOL_VERSION });
        return welcome(m.rid);
      }
      case 'ping': return send({ t: 'pong', rid: m.rid, head: device.info().head });
      case 'close':
        opts.onEvent?.({ t: 'close', reason: m.reason, detail: m.detail });
        session = false; stream = null; ahead = null; subscribeEpoch++; return;
      case 'credit':
        if (m.stream === 0) { consoleCredit.limit = Math.max(consoleCredit.limit, m.limit); return; }
        if (stream && stream.rid === m.stream && m.limit > stream.limit) { stream.limit = m.limit; void pump(); }
        return;
      case 'propose':
        if (!session) return error(m.rid, 'no-session', 'send HELLO first');
        if (pending >= maxRequests) return error(m.rid, 'busy', `${pending} requests outstanding (max_requests ${maxRequests})`);
        void propose(m.rid, m); return;
      case 'subscribe':
        if (!session) return error(m.rid, 'no-session', 'send HELLO first');
        void subscribe(m).catch((e) => error(m.rid, 'internal', String(e))); return;
      default:
        opts.onEvent?.({ t: 'bad-message', detail: `a host does not send ${m.t.toUpperCase()}` });
        return error('rid' in m ? m.rid : 0, 'bad-message', `${m.t.toUpperCase()} is sent by devices, not hosts`);
    }
  };

  const sink = {
    text(b: Uint8Array) { device.consoleInput?.(b); },
    frame(type: number, payload: Uint8Array) {
      stats.framesIn++;
      const d = decodeMessage(type, payload);
      if (!d.ok) { opts.onEvent?.({ t: 'bad-message', detail: d.error.detail }); return error(d.error.rid, d.error.code, d.error.detail); }
      onMessage(d.msg);
    },
    drop(info: DropInfo) {
      stats.drops++;
      opts.onEvent?.({ t: 'drop', info });
      if (info.reason === 'oversized') error(0, 'too-large', `a frame of ${info.length} bytes exceeds this device's max_frame ${maxFrame}`);
    },
  };

  const offAppend = device.onAppend(() => { void pump(); });
  const offConsole = device.onConsole?.((bytes) => {
    if (done) return;
    if (opts.consoleFrames && session && consoleCredit.window > 0) {
      const size = FRAME_OVERHEAD + bytes.length + 16;
      if (consoleCredit.sent + size <= consoleCredit.limit || consoleCredit.sent === consoleCredit.limit - consoleCredit.window) {
        const { type, payload } = encodeMessage({ t: 'console', text: bytes });
        consoleCredit.sent += sendFrame(type, payload);
        return;
      }
    }
    transport.write(stuffText(bytes, opts.findByte));
  });

  const finish = () => { if (done) return; done = true; offAppend(); offConsole?.(); stream = null; };
  transport.attach({
    data(chunk) { if (!done) decoder.push(chunk, sink); },
    close() { finish(); },
  });
  if (opts.announce ?? true) welcome(0);

  return {
    stats,
    close(reason = 'shutdown', detail = '') {
      if (done) return;
      send({ t: 'close', reason, detail });
      finish();
      transport.close();
    },
  };
}
