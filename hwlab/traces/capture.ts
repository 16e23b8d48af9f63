// `orbital-lab capture DEVICE -o FILE`: stream a device's Axiom log over kernel-link into a trace
// file. An existing FILE is resumed: its last entry (seq and hash) is where the subscription
// starts, so a capture stopped, killed or disconnected picks up without a gap or a duplicate.
// The kernel-link client (helper-3's) repairs gaps and resumes across reconnects and reboots; this
// file checks continuity once more before anything is written, and makes entries durable in
// batches (fdatasync per batch, not per entry).
//
// On a qemu device the link is the virtio port's socket, which QEMU serves: when the connection
// drops, the client connects to it again and resumes after the last entry it holds (the guest
// takes a new HELLO as a new session), so the file goes on without a gap or a duplicate. A device
// that `power on` started is joined as it runs, not reset.
import { existsSync } from 'node:fs';
import { initAxiom, decodeEntry, decodeValue, getBytes, getInt, isMap, toHex, equalBytes, type TraceHeader } from '../../axiom/index.ts';
import { TraceWriter, scanTraceSync } from '../../axiom/node/trace-file.ts';
import { createClient } from '../../kernel-link/node/client.ts';
import { connectTransport, StreamTransport } from '../../kernel-link/node/socket.ts';
import type { Transport } from '../../kernel-link/core/transport.ts';
import { LabError } from '../errors.ts';
import type { Device, Lab } from '../labfile.ts';
import { findConsolePort } from '../devices.ts';
import { jobName, yieldKeeper } from '../console/keeper.ts';
import { powerOnSession, type Session } from '../boot.ts';
import type { BootOutcome, FatalLine } from '../console/capture.ts';
import { SerialPort } from 'serialport';
import { lowerLatency, type LatencyTimer } from '../console/latency.ts';

export interface CaptureOptions {
  lab: Lab;
  device: Device;
  out: string;
  /** Stop once the entry with this seq is in the file. */
  untilSeq?: number;
  /** Stop after this long (ms). */
  forMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: { seq: number; written: number; reconnects: number }) => void;
  onConsole?: (text: string) => void;
  /** Extra kernel command line for a qemu device. */
  append?: string;
  /** Called with every link transport as it is opened (tests cut it to prove the capture resumes). */
  onLink?: (t: Transport) => void;
}

export interface CaptureResult {
  file: string;
  device: string;
  deviceId: string;
  /** Entries in the file before this run (the resume point). */
  resumedFrom: number;
  written: number;
  /** seq of the last entry in the file. */
  lastSeq: number;
  duplicatesSkipped: number;
  reconnects: number;
  boots: string[];
  stopped: 'until-seq' | 'time' | 'signal' | 'device-gone' | 'new-log';
  detail?: string;
  /** Console lines (qemu devices) that matched a fatal pattern during the capture. */
  fatal?: FatalLine[];
  /** How the device ended when that stopped the capture (console gone: the lab's; the guest's exit: the OS's). */
  deviceFailure?: BootOutcome['failure'];
  /** Set when the capture joined a QEMU that `power on` started (with its exit, when it ended). */
  attached?: Session['attached'];
  /** A board's USB-serial latency timer (FTDI), as the capture left it (lowered to 1 ms where it could). */
  latencyTimer?: LatencyTimer;
}

function bootInfo(encoded: Uint8Array): TraceHeader | null {
  const d = decodeEntry(encoded);
  if (!d.ok) return null;
  const v = decodeValue(d.value.payload);
  if (!v.ok || !isMap(v.value)) return null;
  const device = getBytes(v.value, 'device');
  const boot = getBytes(v.value, 'boot');
  const k = getInt(v.value, 'k');
  if (!device || !boot || k === undefined) return null;
  return { deviceId: device, bootId: boot, k: Number(k) };
}

export async function captureTrace(o: CaptureOptions): Promise<CaptureResult> {
  // A link on a board's console port: a logger keeping the port gives it up for the capture.
  const kept = o.device.link.on === 'console' && o.device.kind === 'serial-board' ? await yieldKeeper(o.lab.stateDir, o.device.name, jobName()) : null;
  try { return await captureWith(o); } finally { kept?.release(); }
}

async function captureWith(o: CaptureOptions): Promise<CaptureResult> {
  await initAxiom();
  const dev = o.device;
  // Resume point from the file as it is (a torn tail is cut when the writer opens it).
  let resume: { lastSeq: number; lastHash: Uint8Array; boot?: Uint8Array } | undefined;
  let header: TraceHeader | null = null;
  let resumedFrom = 0;
  if (existsSync(o.out)) {
    try {
      const r = TraceWriter.open(o.out, { deviceId: new Uint8Array(16), bootId: new Uint8Array(16), k: 256 }, (entry, hash) => {
        const d = decodeEntry(entry);
        if (d.ok) resume = { lastSeq: d.value.seq, lastHash: hash };
      }, 'never');
      r.writer.close();
      header = r.header;
      resumedFrom = r.recovered;
    } catch (e) {
      throw new LabError('bad-input', 'trace-bad', `${o.out}: cannot resume this trace file: ${(e as Error).message}`);
    }
  }

  let session: Session | null = null;
  let latency: LatencyTimer | null = null;
  let factory: () => Promise<Transport>;
  if (dev.link.on === 'none') throw new LabError('bad-input', 'bad-usage', `${dev.name} has link: none in the lab file; it cannot stream its log`);
  if (dev.link.on === 'socket') {
    const path = dev.link.path;
    factory = () => connectTransport({ path }, 5000);
  } else if (dev.link.on === 'console') {
    if (dev.kind !== 'serial-board') throw new LabError('bad-input', 'bad-usage', `${dev.name}: link on the console needs a serial-board`);
    factory = async () => {
      const path = findConsolePort(dev); // found again each time: survives re-enumeration
      const port = new SerialPort({ path, baudRate: dev.console.baud, autoOpen: false, hupcl: false });
      await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
      // Each request and its answer would otherwise wait out an FTDI adapter's 16 ms timer.
      latency = lowerLatency(path) ?? latency;
      return new StreamTransport(port, `${dev.name} ${path}`);
    };
  } else {
    if (dev.kind !== 'qemu') throw new LabError('bad-input', 'bad-usage', `${dev.name}: link virtio needs a qemu device`);
    session = await powerOnSession({ lab: o.lab, device: dev, timeoutMs: 7 * 24 * 3600_000, keep: true, append: o.append, signal: o.signal, running: 'join' });
    const s = session;
    if (dev.console.chardev === 'virtio') {
      // The console and the link share the virtio port: the one connection the session holds.
      let given = false;
      factory = async () => {
        if (given || !s.console || s.console.closed) throw new LabError('disconnected', 'link-failed', `${dev.name}: QEMU's virtio link is gone (it also carries the console, so it cannot be reopened)`, 'lab');
        given = true;
        return s.console;
      };
    } else {
      const path = s.linkPath;
      if (!path) { await s.stop(); throw new LabError('bad-input', 'bad-usage', `${dev.name} was powered on without a virtio link port (the lab file changed since?); orbital-lab power ${dev.name} off, then capture again`); }
      factory = () => connectTransport({ path }, 5000);
    }
  }
  const open = factory;
  factory = async () => { const t = await open(); o.onLink?.(t); return t; };

  const client = createClient(factory, { resume, subscribe: true, actor: 2, client: 'orbital-lab capture', reconnect: true, maxReconnects: dev.link.on === 'virtio' && dev.console.chardev === 'virtio' ? 0 : 50, reconnectDelayMs: 200 });
  let writer: TraceWriter | null = null;
  let next = resume ? resume.lastSeq + 1 : 0;
  let lastHash: Uint8Array | null = resume?.lastHash ?? null;
  let written = 0;
  let dups = 0;
  let reconnects = 0;
  const boots: string[] = [];
  let batch: Array<{ encoded: Uint8Array; hash: Uint8Array }> = [];
  let stop!: (why: CaptureResult['stopped'], detail?: string) => void;
  let failure: LabError | null = null;
  const stopped = new Promise<{ why: CaptureResult['stopped']; detail?: string }>((res) => { stop = (why, detail) => res({ why, detail }); });

  const flush = () => {
    if (!batch.length || !writer) return;
    writer.append(batch);
    batch = [];
  };
  const timer = setInterval(() => { try { flush(); } catch (e) { failure = new LabError('io', 'io-error', `${o.out}: ${(e as Error).message}`, 'lab'); stop('device-gone', failure.message); } }, 100);

  client.onEntry((e) => {
    if (failure) return;
    if (e.seq < next) { dups++; return; }
    if (e.seq > next) { failure = new LabError('protocol', 'trace-bad', `gap: got entry ${e.seq} while expecting ${next}`, 'lab'); stop('device-gone', failure.message); return; }
    if (!writer) {
      const h = header ?? (e.seq === 0 ? bootInfo(e.encoded) : null);
      if (!h) { failure = new LabError('protocol', 'trace-bad', `the first entry (${e.seq}) is not a BOOT entry; cannot start a trace file`, 'lab'); stop('device-gone', failure.message); return; }
      header = h;
      writer = TraceWriter.open(o.out, h, undefined, 'always').writer;
    }
    if (lastHash && e.seq > 0) {
      // The client verified the chain; a second look costs nothing next to the disk write.
      const d = decodeEntry(e.encoded);
      if (!d.ok || !equalBytes(d.value.prev, lastHash)) { failure = new LabError('protocol', 'trace-bad', `entry ${e.seq} does not follow the file's last entry`, 'lab'); stop('device-gone', failure.message); return; }
    }
    batch.push({ encoded: e.encoded, hash: e.hash });
    lastHash = e.hash;
    next = e.seq + 1;
    written++;
    if (batch.length >= 512) flush();
    o.onProgress?.({ seq: e.seq, written, reconnects });
    if (o.untilSeq !== undefined && e.seq >= o.untilSeq) stop('until-seq');
  });
  client.onConsole((l) => o.onConsole?.(l.text));
  client.onEvent((ev) => {
    if (ev.t === 'connected') boots.push(toHex(ev.welcome.boot));
    if (ev.t === 'disconnected') reconnects++;
    if (ev.t === 'new-log') stop('new-log', `the device started a new log (${ev.reason}); capture it into a new file`);
    if (ev.t === 'closed-by-device') stop('device-gone', `${ev.reason}: ${ev.detail}`);
  });
  // The console is watched for the whole capture: fatal lines are collected (a device that panics
  // may still stream what it logged), and the device's end stops the capture with how it ended.
  const fatal: FatalLine[] = [];
  let deviceFailure: BootOutcome['failure'] | undefined;
  if (session) {
    session.watch.onFatal((f) => { if (fatal.length < 100) fatal.push(f); });
    void session.watch.done.then((out) => {
      if (!out.failure || out.failure.code === 'cancelled' || out.failure.code === 'os-fatal') return;
      deviceFailure = out.failure;
      stop('device-gone', out.failure.message);
    });
  }

  const onAbort = () => stop('signal');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const forTimer = o.forMs ? setTimeout(() => stop('time'), o.forMs) : null;
  try {
    await Promise.race([client.connect(), stopped]);
  } catch (e) {
    clearInterval(timer);
    client.close();
    await session?.stop();
    throw new LabError('disconnected', 'link-failed', `${dev.name}: cannot connect kernel-link: ${(e as Error).message}`, 'lab');
  }
  if (header && client.welcome && !equalBytes(header.deviceId, client.welcome.device) && resume) {
    stop('device-gone', 'device mismatch');
    failure = new LabError('bad-input', 'trace-bad', `${o.out} holds the trace of device ${toHex(header.deviceId)}, but ${dev.name} is ${toHex(client.welcome.device)}; capture into another file`);
  }
  if (o.untilSeq !== undefined && next > o.untilSeq) stop('until-seq');
  const end = await stopped;
  o.signal?.removeEventListener('abort', onAbort);
  if (forTimer) clearTimeout(forTimer);
  clearInterval(timer);
  client.close();
  try { flush(); } finally { (writer as TraceWriter | null)?.close(); }
  await session?.stop();
  if (failure) throw failure;
  return { file: o.out, device: dev.name, deviceId: header ? toHex(header.deviceId) : '', resumedFrom, written, lastSeq: next - 1, duplicatesSkipped: dups + client.stats.duplicatesSkipped, reconnects, boots, stopped: end.why, detail: end.detail, ...(fatal.length ? { fatal } : {}), ...(deviceFailure ? { deviceFailure } : {}), ...(session?.attached ? { attached: session.attached } : {}), ...(latency ? { latencyTimer: latency } : {}) };
}
