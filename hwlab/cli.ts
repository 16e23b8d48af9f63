// `orbital-lab`: the device lab's command line (docs/lab.md). Every command takes --json (one JSON
// object on the last stdout line, progress as JSON lines before it) and exits with 0 success,
// 1 the OS failed, 2 bad usage or lab file, 3 the lab failed (docs/lab.md, "Exit codes").
import { parseArgs } from 'node:util';
import { isatty } from 'node:tty';
import { STDIN } from './flash/source.ts';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, statSync, watch, writeFileSync, writeSync, type FSWatcher } from 'node:fs';
import { junitOf } from './junit.ts';
import { LabError, EXIT, exitCodeFor } from './errors.ts';
import { loadLab, getDevice, parseDuration, parseLab, formatIssue, type Device, type Lab } from './labfile.ts';
import { inventory } from './devices.ts';
import { scan, scanText } from './scan.ts';
import { acquireLock, defaultOwner } from './lock.ts';
import { DEFAULT_PRIORITY, joinQueue, parsePriority, placeOf, queueAhead, reservations, type Ticket } from './queue.ts';
import { SharedDecode, compressedFormat } from './flash/shared.ts';
import { flash, verifyOnly, stuckTargets, type FlashOptions, type FlashProgress, type FlashResult } from './flash/flash.ts';
import { runCommands, type Step } from './run.ts';
import { recordLab, readEvents, readHistory, labLogPath, type DeviceHistory, type LabEvent, type LabRecord } from './history.ts';
import { GUEST_BOOT } from './guest-boot.ts';
import { readTrustedKey, type OrbimgInfo } from './flash/orbimg.ts';
import { progressSink, multiProgress, human } from './progress.ts';
import { power, type PowerAction, type PowerResult } from './power.ts';
import { boot, powerOnSession } from './boot.ts';
import { watchConsole } from './console/hub.ts';
import { Keeper, hasConsolePort, type KeeperEvent } from './console/keeper.ts';
import type { BootOutcome, FatalLine, LogLine } from './console/capture.ts';
import { captureTrace } from './traces/capture.ts';
import { readVm } from './vm.ts';
import { replayTrace, verifyTrace } from './traces/replay.ts';
import { exportChrome } from './traces/export.ts';

/** A size like 4096, 64K, 64KiB, 64M, 64MiB, 1G (powers of 1024); NaN when it is not one. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([KMG])(?:i?B)?|B)?$/i.exec(text.trim());
  if (!m) return NaN;
  return Math.round(Number(m[1]) * 1024 ** (m[2] ? 'KMG'.indexOf(m[2].toUpperCase()) + 1 : 0));
}

/** Writes a report whole or not at all: a temporary file, fsynced, renamed over PATH. */
function writeDurably(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try { writeSync(fd, text); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
}

const USAGE = `usage: orbital-lab [--lab FILE] [--json] COMMAND ...

  init [--force]                           write a starter lab file: the guest kernel in QEMU,
                                           the hosted OS, and a commented-out board
  devices [--tag T]...                     devices, their state and who holds them
  scan [--all]                             what is attached (USB serial ports, disks), which device
                                           uses each, lab-file entries for the rest (--all: loop
                                           devices and on-board UARTs too)
  flash DEVICE IMAGE [--bmap F | --no-bmap] [--force] [--no-verify] [--no-direct] [--no-delta] [--target PATH]
                                           write IMAGE (raw/.gz/.xz/.zst, + .bmap; - = stdin) and verify it;
                                           onto an earlier image only the chunks that differ (--no-delta: all)
  flash DEVICE DEVICE... IMAGE | flash --tag T... IMAGE
                                           the same image onto several devices at once; one that
                                           fails is reported and the others go on
  flash DEVICE FILE.orbimg [--part NAME] [--trust KEY.pub]...
                                           a signed Orbital image: check its signature and key
                                           (trusted: the lab file's trust: and --trust), write one part
  verify DEVICE IMAGE [--bmap F] [--part NAME] [--trust KEY.pub]...
                                           read the target back and compare with IMAGE
  power DEVICE on|off|cycle [--append ARGS]
                                           switch a board (its power commands, or ask a person);
                                           a qemu device over QMP: on starts its QEMU in the background
  boot DEVICE [--image IMG [--part NAME] [--trust KEY.pub]...] [--log FILE] [--timeout 60s] [--retries N] [--append ARGS]
                                           power on with the console attached; report the boot
  console DEVICE [--watch]                 interactive console (--watch: read-only beside the writer)
  run DEVICE [--boot | --image IMG [--bmap F] [--force]] CMD [--expect RE]... [CMD [--expect RE]...]...
      [--timeout 5s] [--char-delay 10ms] [--line-kill] [--junit FILE]
                                           type each CMD on the console, check its echo, then each
                                           --expect (in order, after that CMD's echo; (?<name>..)
                                           groups are recorded as fields); --junit: a JUnit report
  logger [DEVICE...] [--tag T]... [--rotate 64MiB]
                                           keep serial-board consoles logged while no job uses them
                                           (conserver): every byte into STATE/logs/DEVICE/, fatal
                                           patterns reported, console --watch works; a job takes
                                           the port and gives it back; runs until Ctrl-C
  capture DEVICE -o FILE [--until SEQ] [--for 30s]
                                           stream the device's Axiom log into FILE (resumes FILE)
  history [DEVICE] [--events [--limit 50] [--since 1d]]
                                           what the lab did to each device (flashes, boots, power,
                                           runs), replayed from the lab's own Axiom log;
                                           --events: one line an event, newest last
  reserve DEVICE|@TAG [--for 1h] [--reason TEXT] [--wait 10m]
                                           keep a device for yourself (ORBITAL_LAB_OWNER, else
                                           user@host) across commands: others' jobs wait or fail
                                           busy until it ends; reserving again extends it
  release DEVICE [--force] [--reason TEXT] [--check [--timeout 60s]]
                                           end your reservation (--force: someone else's;
                                           --check: a health check after it, failing: out of service)
  check DEVICE|@TAG [--timeout 60s] [--wait 10m]
                                           health check a device in service (boot, then its
                                           health.check commands); failing: out of service
  disable DEVICE --reason TEXT             take a device out of service: jobs refuse it, pools skip
                                           it (a device is also taken out after health.max-lab-failures
                                           lab failures in a row; default 3)
  enable DEVICE [--reason TEXT] [--check [--timeout 60s]]
                                           put it back in service (--check: only if a
                                           health check comes up: a boot, then health.check's commands)
  replay FILE                              verify a trace, replay it, compare with its checkpoints
  verify-trace FILE                        check a trace file's chain only
  export FILE --format chrome -o OUT       Chrome trace JSON (opens in Perfetto)

DEVICE may be @TAG for flash, boot, run and reserve: the first free device with that tag; --wait 10m waits
for it (or for a named DEVICE) while it is in use, in the lab's waiting line: a freed device goes
to the waiting job of the highest --priority (0-100 or low/medium/high; default 50), the one that
has waited longest among equals. --use-disabled lets flash, boot and run use a
device that is out of service (the person fixing it).
The lab file is --lab FILE, else $ORBITAL_LAB, else ./lab.yaml.
Exit codes: 0 ok, 1 the device's OS failed, 2 bad usage or lab file, 3 the lab failed.`;

export interface Io { json: boolean; out: (s: string) => void; err: (s: string) => void }

function labPath(opt: string | undefined): string {
  const p = opt ?? process.env.ORBITAL_LAB ?? 'lab.yaml';
  return resolve(p);
}

/** The keys a signed image may be signed with: the lab file's `trust:` and each --trust (a KEY.pub file or hex key; commas allowed). */
function trustedKeys(l: Lab, flags: string[] | undefined): Uint8Array[] {
  const keys = l.trust.map((t) => t.key);
  for (const spec of (flags ?? []).flatMap((f) => f.split(',')).filter(Boolean)) {
    const r = readTrustedKey(spec);
    if ('error' in r) throw new LabError('bad-input', 'bad-usage', `--trust ${spec}: ${r.error}`);
    keys.push(r.key);
  }
  return keys;
}

/** The lines a flash of a signed image adds to its report. */
function orbimgText(o: OrbimgInfo | undefined): string {
  return o ? `\nsigned image ${o.name} ${o.version} (id ${o.id.slice(0, 16)}…, key ${o.key.slice(0, 16)}…), part '${o.part.name}' (${human(o.part.size)}, blake3 matches the manifest)` : '';
}

function flashText(name: string, r: FlashResult): string {
  const v = r.verify ? `verified ${human(r.verify.bytes)} through ${r.verify.method} at ${r.verify.mbPerS.toFixed(0)} MB/s${r.verify.samples ? `, ${r.verify.samples} samples re-read after the final sync` : ''}` : 'NOT verified (--no-verify)';
  return (r.status === 'skipped'
    ? `${name}: target ${r.target.path} already holds this image (compared ${human(r.verify!.bytes)} uncached); nothing written. --force rewrites it.`
    : `${name}: wrote ${human(r.bytesWritten)} of a ${human(r.imageSize)} image (${r.source.format}${r.source.bmap ? ', bmap' : ''}) to ${r.target.path}${r.delta ? ` - only where it differed: ${r.delta.differed} of ${r.delta.chunks} chunks, ${human(r.delta.unchanged)} already matched${r.delta.blindFrom !== null ? ` (mostly another image: written without reading it first from byte ${r.delta.blindFrom})` : ''} -` : ''} in ${(r.delta ? r.seconds.compare : r.seconds.write + r.seconds.sync).toFixed(2)} s; ${v}; blake3 ${r.blake3}${r.previous ? `\n(the previous flash, started ${r.previous.started}, was ${r.previous.status}; this one started clean)` : ''}`) + orbimgText(r.orbimg);
}

/** One device's part of a flash onto several. */
export type FlashOne = ({ ok: true } & FlashResult) | { device: string; ok: false; error: Record<string, unknown> };

/**
 * `flash DEVICE DEVICE... IMAGE` / `flash --tag T IMAGE`: the same image onto several devices at
 * once (Etcher's multi-target write). Every device is checked first - a name not in the lab file,
 * a device named twice, two devices whose targets are one disk (a by-id link and the node it
 * points to), a device without a flash target, `--target` or stdin (read once, it cannot feed two
 * writes) are bad usage and nothing is written. Then each device is locked and flashed as `flash`
 * does it alone (a raw image read by each in place, a compressed one decompressed once for all:
 * shared.ts); one that fails (held by someone else, full, gone,
 * a mismatch on read-back) is reported and the others go on. Exit: 0 when every device holds the
 * image, else the highest exit code among the failures (3 when any was the lab's).
 */
async function flashMany(l: Lab, names: string[], tags: string[], imageArg: string, target: string | undefined, json: boolean, opts: (dev: Device, image: string, onProgress: (p: FlashProgress) => void) => FlashOptions, useDisabled = false, priority = DEFAULT_PRIORITY): Promise<{ result: unknown; text: string; exit: number }> {
  if (target !== undefined) throw new LabError('bad-input', 'bad-usage', '--target names one device\'s disk: flash one device at a time with it');
  if (imageArg === STDIN) throw new LabError('bad-input', 'bad-usage', 'IMAGE "-" (stdin) can be read only once, so it cannot be flashed onto several devices: save it to a file first');
  const devs: Device[] = [];
  const untargeted: string[] = [];
  for (const n of names) {
    const d = getDevice(l, n);
    if (devs.includes(d)) throw new LabError('bad-input', 'bad-usage', `device ${n} is named twice`);
    devs.push(d);
  }
  if (tags.length) {
    for (const d of l.devices.values()) {
      if (!tags.every((t) => d.tags.includes(t)) || devs.includes(d)) continue;
      if (d.flashTarget) devs.push(d); else untargeted.push(d.name);
    }
    if (!devs.length) throw new LabError('bad-input', 'bad-usage', `no device with a flash target has tag${tags.length > 1 ? 's' : ''} ${tags.join(', ')}${untargeted.length ? ` (${untargeted.join(', ')} ha${untargeted.length > 1 ? 've' : 's'} no flash target)` : ''}`);
  }
  if (!devs.length) throw new LabError('bad-input', 'bad-usage', `missing DEVICE\n\n${USAGE}`);
  const disks = new Map<string, string>();
  for (const d of devs) {
    if (!d.flashTarget) throw new LabError('bad-input', 'bad-usage', `device ${d.name} has no flash target in ${l.path}`);
    let real = d.flashTarget;
    try { real = realpathSync(d.flashTarget); } catch { /* not there yet (a file target): its own flash says so, or creates it */ }
    const o = disks.get(real);
    if (o) throw new LabError('bad-input', 'bad-usage', `devices ${o} and ${d.name} write to the same disk (${real}): flashing both at once would interleave two writes on it`);
    disks.set(real, d.name);
  }
  const image = imagePath(imageArg);
  const view = await labView(l);
  if (useDisabled) view.out.clear();
  // (a device a waiting job has queued for goes to that job: this flash reports it busy)
  const reserved = reservations(queueAhead(l.stateDir, placeOf(priority)));
  const sink = multiProgress({ json }, devs.map((d) => d.name));
  // A compressed image is decompressed once for every device (shared.ts), not once each.
  const format = devs.length > 1 ? compressedFormat(image) : null;
  const shared = format ? new SharedDecode(image, devs.map((d) => d.name)) : null;
  const results: FlashOne[] = await Promise.all(devs.map(async (dev): Promise<FlashOne> => {
    let lock: ReturnType<typeof acquireLock> | null = null;
    try {
      // (claimDevice: refuses one out of service, else locks it)
      lock = claimDevice(l, dev.name, `flash ${image}`, undefined, view, reserved, priority).lock;
      await stillFree(l, dev, lock, true, view);
      const r = await flash({ ...opts(dev, image, (p) => sink(dev.name, p as unknown as Record<string, unknown> & { phase: string })), ...(shared ? { openSource: shared.opener(dev.name) } : {}) });
      sink.done(dev.name, r.status);
      return { ...r, ok: true };
    } catch (e) {
      const le = e instanceof LabError ? e : new LabError('bug', 'bug', `internal error: ${(e as Error)?.stack ?? e}`, 'lab');
      sink.done(dev.name, `FAILED (${le.code})`);
      return { device: dev.name, ok: false, error: le.toJSON() };
    } finally {
      shared?.leave(dev.name);
      if (lock) releaseUnlessStuck(lock, dev.name);
    }
  }));
  sink.end();
  const failed = results.filter((r): r is Extract<FlashOne, { ok: false }> => !r.ok);
  const exit = failed.reduce<number>((x, r) => Math.max(x, EXIT[r.error.blame as keyof typeof EXIT] ?? EXIT.lab), EXIT.ok);
  const lines = results.map((r) => (r.ok ? flashText(r.device, r) : `${r.device}: FAILED - ${r.error.blame === 'os' ? 'the OS failed' : r.error.blame === 'usage' ? 'bad usage' : 'a lab failure'} (${String(r.error.code)}): ${String(r.error.message)}`));
  const head = `flash ${image} onto ${results.length} device(s): ${results.length - failed.length} hold it${failed.length ? `, ${failed.length} FAILED (${failed.map((f) => f.device).join(', ')})` : ''}${untargeted.length ? `; tagged but without a flash target: ${untargeted.join(', ')}` : ''}`;
  const decoded = shared ? { format, passes: shared.passes } : null;
  return { result: { ok: failed.length === 0, image, flashes: results, ...(decoded ? { decoded } : {}) }, text: [head + (decoded ? ` (${format} decompressed ${decoded.passes === 1 ? 'once' : `${decoded.passes} times`} for all of them)` : ''), ...lines.map((x) => `  ${x.replace(/\n/g, '\n    ')}`)].join('\n'), exit };
}

/**
 * The device a command names, locked for it. DEVICE is a name, or `@TAG`: the first device (in the
 * lab file's order) that has the tag, can do the job (`why` says why one cannot) and is free - a
 * pool of boards, as labgrid's places reserved by tag. Every device with the tag held by someone
 * else is `device-locked`, naming the holders; none with the tag is bad usage.
 */
function claimDevice(l: Lab, arg: string, command: string, why?: (d: Device) => string | null, view: LabView = EMPTY_VIEW, reserved: ReadonlyMap<string, Ticket> = new Map(), priority = DEFAULT_PRIORITY): { dev: Device; lock: ReturnType<typeof acquireLock> } {
  if (!arg.startsWith('@')) {
    const dev = getDevice(l, arg);
    const no = why?.(dev);
    if (no) throw new LabError('bad-input', 'bad-usage', `${dev.name} ${no}`);
    const out = view.out.get(dev.name);
    if (out) throw new LabError('refused', 'out-of-service', `${dev.name} is out of service: ${outText(out)}; when it is fixed: orbital-lab enable ${dev.name} (or --use-disabled to use it now, as the person fixing it)`, 'lab', { device: dev.name, service: out });
    const held = heldByOther(view, dev.name);
    if (held) throw heldError(dev.name, held);
    // (a device reserved for this person is theirs: those waiting for it wait for the reservation to end)
    const r = heldByMe(view, dev.name) ? undefined : reserved.get(dev.name);
    if (r) throw new LabError('busy', 'device-locked', `device ${dev.name} is ${reservedText(r, priority)}; --wait to queue behind it`, 'lab', { device: dev.name, queuedBefore: r });
    return { dev, lock: acquireLock(l.stateDir, dev.name, command) };
  }
  const tag = arg.slice(1);
  const { tagged, able, usable: inService } = poolOf(l, tag, why, view);
  if (!able.length) throw new LabError('bad-input', 'bad-usage', tagged.length ? `no device tagged ${tag} can do this: ${tagged.map((d) => `${d.name} ${why!(d)}`).join('; ')}` : `no device in ${l.path} has the tag ${tag} (tags: ${[...new Set([...l.devices.values()].flatMap((d) => d.tags))].join(', ') || 'none'})`);
  // A device reserved for this person comes first; devices a job that has waited longer wants
  // come after the others (and are not taken: busy), as do those reserved for someone else.
  const rank = (d: Device) => (heldByMe(view, d.name) ? 0 : heldByOther(view, d.name) ? 3 : reserved.has(d.name) ? 2 : 1);
  const usable = inService.sort((a, b) => rank(a) - rank(b));
  if (!usable.length) throw new LabError('refused', 'out-of-service', `every device tagged ${tag} that can do this is out of service: ${able.map((d) => `${d.name} (${outText(view.out.get(d.name)!)})`).join('; ')}; orbital-lab enable DEVICE puts one back`, 'lab', { tag });
  const busy: string[] = [];
  for (const dev of usable) {
    const held = heldByOther(view, dev.name);
    if (held) { busy.push(`${dev.name} (${heldText(held)})`); continue; }
    const r = heldByMe(view, dev.name) ? undefined : reserved.get(dev.name);
    if (r) { busy.push(`${dev.name} (${reservedText(r, priority)})`); continue; }
    try { return { dev, lock: acquireLock(l.stateDir, dev.name, command) }; } catch (e) {
      if (!(e instanceof LabError) || e.code !== 'device-locked') throw e;
      const h = e.detail.holder as { owner?: string; command?: string } | undefined;
      busy.push(h ? `${dev.name} (${h.owner}: ${h.command})` : dev.name);
    }
  }
  const off = able.length - usable.length;
  throw new LabError('busy', 'device-locked', `every device tagged ${tag} is in use: ${busy.join(', ')}${off ? ` (and ${off} out of service)` : ''}; wait, or add a board to the pool`, 'lab', { tag });
}

/**
 * A pool: the devices with the tag, those that can do the job (`why`), and of those the ones in
 * service. Devices whose last boot failed on the lab's side (a dead board, a loose cable) come
 * last, so one broken board does not take every job first; they are still used when nothing else
 * is free. Devices out of service are not used at all.
 */
function poolOf(l: Lab, tag: string, why: ((d: Device) => string | null) | undefined, view: LabView): { tagged: Device[]; able: Device[]; usable: Device[] } {
  const tagged = [...l.devices.values()].filter((d) => d.tags.includes(tag));
  const able = tagged.filter((d) => !why?.(d)).sort((a, b) => Number(view.suspect.has(a.name)) - Number(view.suspect.has(b.name)));
  return { tagged, able, usable: able.filter((d) => !view.out.has(d.name)) };
}

type ServiceRecord = NonNullable<DeviceHistory['service']>;
type Reservation = NonNullable<DeviceHistory['reservation']>;
/**
 * What the lab log says about devices, for picking one: those out of service, those whose last
 * boot failed on the lab's side, and those reserved for someone (`held`: reservations not yet ended).
 */
interface LabView { out: Map<string, ServiceRecord>; suspect: Set<string>; held: Map<string, Reservation>; stamp: string }
const EMPTY_VIEW: LabView = { out: new Map(), suspect: new Set(), held: new Map(), stamp: '' };

/** The lab log's size and mtime: a view read at the same stamp is still the log's (nothing was appended). */
function logStamp(l: Lab): string {
  try { const st = statSync(labLogPath(l.stateDir)); return `${st.size}:${st.mtimeMs}`; } catch { return 'none'; }
}

/** A reservation in force: held, and its end not yet reached. */
const inForce = (r: Reservation | null | undefined, now = Date.now()): r is Reservation => !!r && r.state === 'held' && r.until > now;
const heldByOther = (v: LabView, device: string): Reservation | null => { const r = v.held.get(device); return inForce(r) && r.owner !== defaultOwner() ? r : null; };
const heldByMe = (v: LabView, device: string): boolean => { const r = v.held.get(device); return inForce(r) && r.owner === defaultOwner(); };
/** "by alice until T (reason)" */
const heldWhom = (r: Reservation) => `by ${r.owner} until ${new Date(r.until).toISOString()}${r.reason ? ` (${r.reason})` : ''}`;
const heldText = (r: Reservation) => `reserved ${heldWhom(r)}`;
/** A reservation as `--json` gives it (errors and devices). */
const heldJson = (r: Reservation) => ({ owner: r.owner, until: r.until, reason: r.reason, seq: r.seq });
function heldError(device: string, r: Reservation): LabError {
  return new LabError('busy', 'device-locked', `device ${device} is ${heldText(r)}; --wait to queue for it, or ask ${r.owner} to release it (orbital-lab release ${device})`, 'lab', { device, reservation: heldJson(r) });
}

/**
 * Checks again, once the device is locked, that nobody reserved it between reading the lab log and
 * taking the lock (a reservation is recorded while its maker holds the device's lock, so after
 * taking it the log is up to date); releases the lock and throws when somebody did. `seen`: the
 * view the device was picked with, used again when nothing was appended since it was read.
 */
async function stillFree(l: Lab, dev: Device, lock: ReturnType<typeof acquireLock>, warn = true, seen?: LabView): Promise<void> {
  const view = seen && seen.stamp === logStamp(l) ? seen : await labView(l);
  const h = heldByOther(view, dev.name);
  if (h) { lock.release(); throw heldError(dev.name, h); }
  // The person's own reservation about to end: said (on stderr) while it can still be extended.
  const mine = view.held.get(dev.name);
  const left = mine ? mine.until - Date.now() : Infinity;
  if (warn && heldByMe(view, dev.name) && left < 10 * 60_000) process.stderr.write(`orbital-lab: your reservation of ${dev.name} ends in ${spanText(left)} (${new Date(mine!.until).toISOString()}); orbital-lab reserve ${dev.name} --for 1h extends it\n`);
}

/** The device lock for a command that names one device (verify, power, console, capture): refused while it is reserved for someone else. */
async function lockDevice(l: Lab, dev: Device, command: string): Promise<ReturnType<typeof acquireLock>> {
  const lock = acquireLock(l.stateDir, dev.name, command);
  await stillFree(l, dev, lock);
  return lock;
}
const reservedText = (t: Ticket, mine: number) => `free, but kept for a job ${t.priority > mine ? `of a higher priority (${t.priority}, this job's ${mine})` : 'that has waited longer'} (${t.owner}, pid ${t.pid}, waiting since ${t.since}: "${t.command}")`;
const outText = (s: ServiceRecord) => `since ${new Date(s.time).toISOString()}, by ${s.by || '?'}: ${s.reason || 'no reason given'}`;

/**
 * claimDevice, waiting up to `waitMs` (`--wait`) while the device (or every device of the pool) is
 * held. A waiting job takes a ticket in the lab's queue (queue.ts) for each device it could use,
 * and a device freed goes to the job that has waited longest for it (checked every 200 ms); a job
 * that does not wait may take only a device nobody is waiting for. Says once that it waits, and how
 * many came first (stderr, or a JSON `waiting` event); Ctrl-C stops the wait.
 */
async function claimWaiting(l: Lab, arg: string, command: string, why: ((d: Device) => string | null) | undefined, waitMs: number, signal: AbortSignal, json: boolean, useDisabled = false, priority = DEFAULT_PRIORITY): Promise<{ dev: Device; lock: ReturnType<typeof acquireLock> }> {
  const t0 = performance.now();
  // A job that does not wait still comes after those waiting: it may take only a device no waiting job wants.
  let queued: ReturnType<typeof joinQueue> | null = null;
  try {
    for (;;) {
      // (read each try: a reservation ends, a device is put back in service while a job waits)
      const view = await labView(l);
      if (useDisabled) view.out.clear();
      const ahead = queueAhead(l.stateDir, queued?.ticket.name ?? placeOf(priority));
      try {
        const got = claimDevice(l, arg, command, why, view, reservations(ahead), priority);
        await stillFree(l, got.dev, got.lock, command !== 'reserve', view);
        return got;
      } catch (e) {
        if (!(e instanceof LabError) || e.code !== 'device-locked' || waitMs <= 0) throw e;
        const waited = performance.now() - t0;
        if (waited >= waitMs) throw new LabError('busy', 'device-locked', `${e.message} (still, after waiting ${(waited / 1000).toFixed(1)} s: --wait)`, 'lab', e.detail);
        if (signal.aborted) throw new LabError('timeout', 'cancelled', `cancelled while waiting for ${arg}: ${e.message}`, 'lab');
        if (!queued) {
          // Take a ticket for every device this job could use: each goes to the job that waited longest for it.
          const wants = arg.startsWith('@') ? poolOf(l, arg.slice(1), why, view).usable.map((d) => d.name) : [arg];
          queued = joinQueue(l.stateDir, wants, command, priority);
          const n = queueAhead(l.stateDir, queued.ticket.name).filter((t) => t.wants.some((d) => wants.includes(d))).length;
          const place = n ? `; ${n} job(s) waiting for it came first` : '';
          if (json) process.stdout.write(`${JSON.stringify({ event: 'waiting', device: arg, forMs: waitMs, why: e.message, ahead: n, time: new Date().toISOString() })}\n`);
          else process.stderr.write(`orbital-lab: waiting up to ${(waitMs / 1000).toFixed(1)} s for ${arg}: ${e.message}${place}\n`);
        }
        // Woken as soon as a lock is released, a ticket leaves or the lab log grows (a reservation
        // released): inotify on those directories; the 200 ms poll stays for file systems without it.
        await new Promise<void>((r) => {
          const watchers: FSWatcher[] = [];
          const done = () => { clearTimeout(t); signal.removeEventListener('abort', done); for (const w of watchers) w.close(); r(); };
          const t = setTimeout(done, 200);
          signal.addEventListener('abort', done, { once: true });
          if (process.env.ORBITAL_LAB_POLL_ONLY !== '1') for (const d of [join(l.stateDir, 'locks'), join(l.stateDir, 'queue'), l.stateDir]) {
            try { watchers.push(watch(d, done)); } catch { /* not there yet, or no inotify: the poll */ }
          }
        });
      }
    }
  } finally { queued?.leave(); }
}

/**
 * The lab log's view for claimDevice (an unreadable log gives an empty one: a damaged log must not
 * stop the lab, and `history` reports it).
 */
async function labView(l: Lab): Promise<LabView> {
  // (stamped before reading: an append while it is read makes the stamp stale, never the view)
  const stamp = logStamp(l);
  try {
    const h = await readHistory(l.stateDir, { fast: true });
    return {
      out: new Map(h.devices.filter((d) => d.service?.state === 'out').map((d) => [d.name, d.service!])),
      suspect: new Set(h.devices.filter((d) => (d.lastBoot && !d.lastBoot.ok && d.lastBoot.blame !== 'os')).map((d) => d.name)),
      held: new Map(h.devices.filter((d) => inForce(d.reservation)).map((d) => [d.name, d.reservation!])),
      stamp,
    };
  } catch { return { out: new Map(), suspect: new Set(), held: new Map(), stamp }; }
}

/**
 * Appends records to the lab log for a command whose record is the point of it (service,
 * reservations, health checks): a failure to record is the command's failure, said as such.
 */
async function recordOrFail(l: Lab, records: LabRecord[]): Promise<number[]> {
  try { return await recordLab(l.stateDir, records, { maxLabFailures: (d) => l.devices.get(d)?.health.maxLabFailures ?? 0 }); } catch (e) {
    throw e instanceof LabError ? e : new LabError('io', 'io-error', `could not record in the lab log ${labLogPath(l.stateDir)}: ${(e as Error).message}`, 'lab');
  }
}

interface HealthCheck { ok: boolean; stage: string | null; bootMs: number | null; log: string; commands?: Array<{ cmd: string; ok: boolean }>; failure?: { blame: string; code: string; message: string } }

/** What a check was: "health-check boot", or "health check (boot, then N command(s))". */
const checkName = (c: HealthCheck) => (c.commands ? `health check (boot, then ${c.commands.length} command(s))` : 'health-check boot');
/** A failure in words: "the OS failed (os-fatal): ..." / "a lab failure (boot-timeout): ...". */
const failedText = (f: { blame: string; code: string; message: string }) => `${f.blame === 'os' ? 'the OS failed' : 'a lab failure'} (${f.code}): ${f.message}`;
/** The `service out` record of a failed check; `what` says which check ("health check after alice's reservation"). */
const checkOutRecord = (device: string, what: string, f: { blame: string; code: string; message: string }, by: string): LabRecord =>
  ({ action: 'service', args: { device, state: 'out', reason: `${what} failed (${f.blame === 'os' ? 'the OS' : 'the lab'}: ${f.code}): ${f.message}`.slice(0, 1024), by } });

/**
 * A health check of a device whose lock the caller holds (LAVA's health check): a boot, then the
 * lab file's health.check commands, if any, typed and their answers checked as `run` does. Returns
 * how it went and the lab-log records of the boot (and run); throws only for bad usage.
 */
async function healthCheck(l: Lab, dev: Device, timeoutMs: number | undefined, signal: AbortSignal): Promise<{ check: HealthCheck; records: LabRecord[] }> {
  const records: LabRecord[] = [];
  try {
    if (dev.health.check.length) {
      const r = await onDevice(dev, () => runCommands({ lab: l, device: dev, steps: dev.health.check, boot: true, bootTimeoutMs: timeoutMs, signal }));
      const b = r.boot;
      const f = r.failure;
      if (b) records.push(bootRecord(dev.name, r.bootId, b.ok, b.stage, b.failure, b.bootMs));
      records.push({ action: 'run', args: { device: dev.name, ok: r.ok ? 1 : 0, commands: r.steps.length, blame: f ? f.blame : '', code: f ? String(f.code).slice(0, 64) : '' } });
      return {
        check: {
          ok: r.ok, stage: b?.stage ?? null, bootMs: b?.bootMs ?? null, log: r.log,
          commands: r.steps.map((x) => ({ cmd: x.cmd, ok: x.echo !== null && x.expect.every((e) => e.line !== null) })),
          ...(f ? { failure: { blame: f.blame, code: f.code, message: f.message } } : {}),
        },
        records,
      };
    }
    const r = await onDevice(dev, () => boot({ lab: l, device: dev, timeoutMs, signal }));
    records.push(bootRecord(dev.name, r.bootId, r.ok, r.stage, r.failure, r.bootMs));
    return { check: { ok: r.ok, stage: r.stage ?? null, bootMs: r.bootMs ?? null, log: r.log, ...(r.failure ? { failure: { blame: r.failure.blame, code: r.failure.code, message: r.failure.message } } : {}) }, records };
  } catch (e) {
    if (!(e instanceof LabError) || e.blame === 'usage') throw e;
    const failure = { blame: e.blame === 'os' ? 'os' : 'lab', code: e.code, message: e.message };
    return { check: { ok: false, stage: null, bootMs: null, log: '', failure }, records: [bootRecord(dev.name, '', false, '', failure, 0)] };
  }
}

/**
 * `disable DEVICE --reason TEXT` / `enable DEVICE [--reason TEXT]`: takes a device out of service
 * (no flash, boot or run uses it; a pool skips it) or puts it back, as a `service` record in the
 * lab log. No device lock is needed: a job already running on it finishes; the next one is refused
 * (`enable --check` locks the device for its health-check boot). Recording is the whole command,
 * so a failure to record is its failure.
 */
async function serviceCommand(state: 'in' | 'out', args: string[], l: Lab, signal: AbortSignal): Promise<{ result: unknown; text: string; exit?: number }> {
  const { values, positionals } = parseArgs({ args, options: { reason: { type: 'string' }, check: { type: 'boolean' }, timeout: { type: 'string' } }, allowPositionals: true });
  const dev = getDevice(l, need(positionals[0], 'DEVICE'));
  oneDevice(positionals);
  if (state === 'out' && (values.check || values.timeout)) throw new LabError('bad-input', 'bad-usage', '--check and --timeout go with enable (a health-check boot before the device is put back)');
  if (values.timeout && !values.check) throw new LabError('bad-input', 'bad-usage', '--timeout goes with --check');
  const timeoutMs = timeoutOf(values.timeout);
  const reason = reasonOf(values.reason);
  if (state === 'out' && !reason) throw new LabError('bad-input', 'bad-usage', `disable ${dev.name} needs --reason TEXT: whoever finds the board out of service reads it (say what is wrong, and who to ask)`);
  const before = (await readHistory(l.stateDir, { fast: true })).devices.find((d) => d.name === dev.name)?.service;
  const by = defaultOwner().slice(0, 128);
  const records: LabRecord[] = [];
  // enable --check: a health check first (LAVA's health check on a device's return): a boot, then
  // the lab file's health.check commands, if any, typed and their answers checked as `run` does.
  // Only a check that passes puts the device back. The boot (and the run) is recorded either way.
  let check: HealthCheck | undefined;
  if (values.check) {
    const lock = await lockDevice(l, dev, 'enable --check (health check)');
    try {
      const c = await healthCheck(l, dev, timeoutMs, signal);
      check = c.check;
      records.push(...c.records);
    } finally { lock.release(); }
  }
  const checkWhat = check ? checkName(check) : '';
  const bootS = ((check?.bootMs ?? 0) / 1000).toFixed(3);
  const checkOk = check?.commands ? `health check ok: booted in ${bootS} s, ${check.commands.length} command(s) answered` : `health-check boot ok in ${bootS} s`;
  if (!check || check.ok) records.push({ action: 'service', args: { device: dev.name, state, reason: reason || (check ? checkOk : ''), by } });
  const seqs = await recordOrFail(l, records);
  const was = before?.state === 'out' ? 'out' : 'in';
  if (check && !check.ok) {
    const f = check.failure!;
    return {
      result: { ok: false, device: dev.name, was, check, failure: f },
      text: `${dev.name}: ${checkWhat} FAILED - ${failedText(f)}\n${dev.name} ${was === 'out' ? 'stays out of service' : 'was in service and stays so (enable --check does not take a device out)'}${check.log ? `; log ${check.log}` : ''}`,
      exit: f.blame === 'os' ? EXIT.os : EXIT.lab,
    };
  }
  const seq = seqs[seqs.length - 1]!;
  const recReason = String(records[records.length - 1]!.args.reason);
  const checked = check ? ` after a ${checkWhat} (${checkOk}; log ${check.log})` : '';
  const text = state === 'out'
    ? `${dev.name}: out of service${was === 'out' ? ' (it already was; reason updated)' : ''}: ${reason}. flash, boot and run refuse it and pools skip it; orbital-lab enable ${dev.name} puts it back`
    : `${dev.name}: in service${was === 'in' ? ' (it already was)' : ` again (was out since ${new Date(before!.time).toISOString()}: ${before!.reason})`}${checked}`;
  return { result: { ok: true, device: dev.name, service: { state, reason: recReason, by, seq }, was, ...(check ? { check } : {}) }, text };
}

/** The commands that take one DEVICE (and a --reason that may need quoting). */
function oneDevice(positionals: string[]): void {
  if (positionals.length > 1) throw new LabError('bad-input', 'bad-usage', `one DEVICE at a time (got ${positionals.join(' ')}); quote a --reason with spaces`);
}

/** `--timeout`: a duration, or undefined when not given. */
function timeoutOf(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const ms = parseDuration(v);
  if (!ms) throw new LabError('bad-input', 'bad-usage', `--timeout must be a duration like 30s (got "${v}")`);
  return ms;
}

/** `--reason`: trimmed, and short enough for the lab log (1024 bytes). */
function reasonOf(v: string | undefined): string {
  const reason = (v ?? '').trim();
  if (Buffer.byteLength(reason) > 1024) throw new LabError('bad-input', 'bad-usage', `--reason is ${Buffer.byteLength(reason)} bytes; keep it under 1024`);
  return reason;
}

/** `--priority`: 0-100 or low / medium / high; 50 when not given. */
function priorityOf(v: string | undefined): number {
  if (v === undefined) return DEFAULT_PRIORITY;
  const p = parsePriority(v);
  if (p === null) throw new LabError('bad-input', 'bad-usage', `--priority must be a whole number from 0 to 100, or low, medium or high (0, 50, 100) (got "${v}")`);
  return p;
}

/**
 * `check DEVICE [--timeout 60s] [--wait 10m]`: a health check of a device in service (LAVA's
 * scheduled health check, for a cron job): locked as any job is, booted and its health.check
 * commands run; one that fails takes the device out of service, so jobs stop landing on it before
 * they fail on it.
 */
async function checkCommand(args: string[], l: Lab, signal: AbortSignal, json: boolean): Promise<{ result: unknown; text: string; exit: number }> {
  const { values, positionals } = parseArgs({ args, options: { timeout: { type: 'string' }, wait: { type: 'string' }, priority: { type: 'string' } }, allowPositionals: true });
  const devArg = need(positionals[0], 'DEVICE');
  const timeoutMs = timeoutOf(values.timeout);
  const { dev, lock } = await claimWaiting(l, devArg, 'check (health check)', undefined, waitOf(values.wait), signal, json, false, priorityOf(values.priority));
  try {
    const { check, records } = await healthCheck(l, dev, timeoutMs, signal);
    const f = check.failure;
    const by = defaultOwner().slice(0, 128);
    if (!check.ok && f) records.push(checkOutRecord(dev.name, 'health check', f, by));
    await recordOrFail(l, records);
    const what = checkName(check);
    if (check.ok) return { result: { ok: true, device: dev.name, check }, text: `${dev.name}: ${what} ok (booted in ${((check.bootMs ?? 0) / 1000).toFixed(3)} s; log ${check.log})`, exit: EXIT.ok };
    return {
      result: { ok: false, device: dev.name, check, failure: f, outOfService: true },
      text: `${dev.name}: ${what} FAILED - ${failedText(f!)}\n${dev.name} is now OUT OF SERVICE; orbital-lab enable ${dev.name} --check puts it back once it is fixed${check.log ? `; log ${check.log}` : ''}`,
      exit: f!.blame === 'os' ? EXIT.os : EXIT.lab,
    };
  } finally { lock.release(); }
}

/** 90 min -> "1 h 30 min". */
function spanText(ms: number): string {
  const m = Math.round(ms / 60_000);
  if (m < 1) return `${Math.round(ms / 1000)} s`;
  const d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mm = m % 60;
  return [d ? `${d} d` : '', h ? `${h} h` : '', mm ? `${mm} min` : ''].filter(Boolean).join(' ');
}

/** `history [DEVICE] --events [--limit N] [--since 1d]`: what the lab did, one line an event, from the lab log. */
async function eventsCommand(l: Lab, device: string | undefined, limitArg: string | undefined, sinceArg: string | undefined): Promise<{ result: unknown; text: string; exit: number }> {
  const limit = limitArg === undefined ? 50 : Number(limitArg);
  if (!Number.isInteger(limit) || limit < 1) throw new LabError('bad-input', 'bad-usage', `--limit takes a count of events (got "${limitArg}")`);
  const back = sinceArg === undefined ? undefined : parseDuration(sinceArg);
  if (sinceArg !== undefined && !back) throw new LabError('bad-input', 'bad-usage', `--since takes a duration back from now, like 1d or 2h (got "${sinceArg}")`);
  const r = await readEvents(l.stateDir, { device, limit, since: back === undefined ? undefined : Date.now() - back });
  const lines = r.events.map((e) => `${new Date(e.time).toISOString()}  seq ${String(e.seq).padEnd(6)} ${String(e.args.device).padEnd(14)} ${e.action.padEnd(8)} ${eventText(e)}`);
  const dmg = r.damaged ? `\nthe lab log ${r.file} is DAMAGED at entry ${r.damaged.seq} (${r.damaged.reason}): these are the events before it` : '';
  return { result: { ok: !r.damaged, file: r.file, events: r.events, ...(r.damaged ? { damaged: r.damaged } : {}) }, text: (lines.length ? lines.join('\n') : `no events${device ? ` for ${device}` : ''} in ${r.file}`) + dmg, exit: r.damaged ? EXIT.lab : EXIT.ok };
}

/** One lab event in words. */
function eventText(e: LabEvent): string {
  const a = e.args as Record<string, string | number>;
  const failed = (blame: unknown, code: unknown) => `FAILED${blame ? ` (${blame === 'os' ? 'the OS' : 'the lab'}: ${code})` : code ? ` (${code})` : ''}`;
  switch (e.action) {
    case 'flash': return a.status === 'failed' ? `${failed('', a.code)} ${a.image}` : `${a.status} ${a.image}${a.blake3 ? `, blake3 ${String(a.blake3).slice(0, 16)}…` : ''}${a.status === 'written' ? `, ${human(Number(a.bytes))} written` : ''}`;
    case 'power': return `${a.action} ${a.ok ? 'ok' : failed('', a.code)}`;
    case 'boot': return a.ok ? `ok in ${(Number(a.boot_ms) / 1000).toFixed(3)} s (stage ${a.stage || 'none'})` : `${failed(a.blame, a.code)} at stage ${a.stage || 'none'}`;
    case 'run': return `${a.commands} command(s) ${a.ok ? 'ok' : failed(a.blame, a.code)}`;
    case 'service': return `${a.state === 'out' ? 'OUT OF SERVICE' : 'back in service'} by ${a.by}${a.reason ? `: ${a.reason}` : ''}`;
    case 'console': return `FATAL line while no job held the console (pattern "${a.pattern}"): ${a.text}${a.log ? ` (in ${a.log})` : ''}`;
    case 'reserve': return a.state === 'held' ? `reserved by ${a.owner} until ${new Date(Number(a.until)).toISOString()}${a.reason ? `: ${a.reason}` : ''}` : `${a.owner}'s reservation released${a.by !== a.owner ? ` by ${a.by}` : ''}${a.reason ? `: ${a.reason}` : ''}`;
  }
}

/** The last reservation of a device, for history. */
function reservationText(r: Reservation): string {
  const at = (t: number) => new Date(t).toISOString();
  if (r.state === 'released') return `reservation by ${r.owner} released at ${at(r.time)}${r.by !== r.owner ? ` by ${r.by}` : ''}${r.reason ? `: ${r.reason}` : ''}`;
  return `reserved by ${r.owner} at ${at(r.time)} until ${at(r.until)}${inForce(r) ? '' : ' (ended)'}${r.reason ? `: ${r.reason}` : ''}`;
}

/** The longest reservation: a forgotten one ends within a week. */
const MAX_RESERVE_MS = 7 * 24 * 3600_000;

/**
 * `reserve DEVICE|@TAG [--for 1h] [--reason TEXT]`: the device is this person's until then
 * (labgrid's acquire, LAVA's hacking session): jobs run by anyone else (another ORBITAL_LAB_OWNER
 * or user@host) get device-locked, or wait for it with --wait, and pools pass it over; this
 * person's own commands use it as usual, ahead of those waiting. Recorded in the lab log (the
 * reservation is read from there), while the device's lock is held - so it is not reserved from
 * under a job that is using it, and a job that reads the log just before sees it once it has the
 * lock (stillFree). Reserving it again extends it.
 */
async function reserveCommand(args: string[], l: Lab, signal: AbortSignal, json: boolean): Promise<{ result: unknown; text: string }> {
  const { values, positionals } = parseArgs({ args, options: { for: { type: 'string' }, reason: { type: 'string' }, wait: { type: 'string' }, priority: { type: 'string' }, 'use-disabled': { type: 'boolean' } }, allowPositionals: true });
  const devArg = need(positionals[0], 'DEVICE');
  oneDevice(positionals);
  const forMs = values.for === undefined ? 3600_000 : parseDuration(values.for);
  if (!forMs || forMs <= 0) throw new LabError('bad-input', 'bad-usage', `--for must be a duration like 2h or 30m (got "${values.for}")`);
  if (forMs > MAX_RESERVE_MS) throw new LabError('bad-input', 'bad-usage', `--for ${values.for} is longer than a week; reserve for less and extend it (reserve again) while you need it - a forgotten reservation then ends by itself`);
  const reason = reasonOf(values.reason);
  const me = defaultOwner().slice(0, 128);
  const { dev, lock } = await claimWaiting(l, devArg, 'reserve', undefined, waitOf(values.wait), signal, json, values['use-disabled'], priorityOf(values.priority));
  let before: Reservation | undefined;
  let until: number;
  let seq: number;
  try {
    before = (await labView(l)).held.get(dev.name);
    until = Date.now() + forMs;
    [seq] = await recordOrFail(l, [{ action: 'reserve', args: { device: dev.name, state: 'held', owner: me, until, reason, by: me } }]) as [number];
  } finally { lock.release(); }
  const was = inForce(before) ? { until: before.until, reason: before.reason } : null;
  const text = `${dev.name}: reserved for ${me} until ${new Date(until).toISOString()} (${spanText(forMs)})${was ? ` - extended; it was until ${new Date(was.until).toISOString()}` : ''}${reason ? `: ${reason}` : ''}
`
    + `jobs by anyone else get device-locked, or wait for it (--wait); yours use it. orbital-lab release ${dev.name} ends it (as does the time running out)`;
  return { result: { ok: true, device: dev.name, reservation: { owner: me, until, reason, seq }, ...(was ? { was } : {}) }, text };
}

/**
 * `release DEVICE [--force] [--reason TEXT] [--check [--timeout 60s]]`: ends a reservation - one's
 * own, or with --force someone else's (recorded as by whom). --check: LAVA's health check after a
 * hacking session - the device stays locked from the release through a health check, and one that
 * fails takes it out of service, so the next job does not inherit a board left broken.
 */
async function releaseCommand(args: string[], l: Lab, signal: AbortSignal): Promise<{ result: unknown; text: string; exit?: number }> {
  const { values, positionals } = parseArgs({ args, options: { force: { type: 'boolean' }, reason: { type: 'string' }, check: { type: 'boolean' }, timeout: { type: 'string' } }, allowPositionals: true });
  if (values.timeout && !values.check) throw new LabError('bad-input', 'bad-usage', '--timeout goes with --check');
  const timeoutMs = timeoutOf(values.timeout);
  const dev = getDevice(l, need(positionals[0], 'DEVICE'));
  oneDevice(positionals);
  const reason = reasonOf(values.reason);
  const me = defaultOwner().slice(0, 128);
  const last = (await readHistory(l.stateDir, { fast: true })).devices.find((d) => d.name === dev.name)?.reservation;
  if (!inForce(last)) {
    const was = last as Reservation | undefined;
    const ended = was?.state === 'held' ? ` (${was.owner}'s reservation ended at ${new Date(was.until).toISOString()})` : was ? ` (released by ${was.by} at ${new Date(was.time).toISOString()})` : '';
    return { result: { ok: true, device: dev.name, released: false, reservation: null }, text: `${dev.name} is not reserved${ended}; nothing to release` };
  }
  if (last.owner !== me && !values.force) {
    throw new LabError('refused', 'reserved-by-other', `${dev.name} is ${heldText(last)}, not by ${me}; ask them, or release it with --force (recorded with your name${reason ? '' : '; say why with --reason'})`, 'usage', { device: dev.name, reservation: heldJson(last) });
  }
  // (--check: the device's lock is taken before the release, so no waiting job gets it before the check)
  const lock = values.check ? acquireLock(l.stateDir, dev.name, 'release --check (health check)') : null;
  try {
    const [seq] = await recordOrFail(l, [{ action: 'reserve', args: { device: dev.name, state: 'released', owner: last.owner, until: 0, reason, by: me } }]) as [number];
    const theirs = last.owner !== me ? ` (${last.owner}'s, taken back by ${me}${reason ? `: ${reason}` : ''})` : '';
    const result = { ok: true, device: dev.name, released: true, was: { owner: last.owner, until: last.until, reason: last.reason }, by: me, seq };
    if (!lock) return { result, text: `${dev.name}: reservation released${theirs}; it goes to the next job (those waiting first)` };
    const { check, records } = await healthCheck(l, dev, timeoutMs, signal);
    const f = check.failure;
    if (!check.ok && f) records.push(checkOutRecord(dev.name, `health check after ${last.owner}'s reservation`, f, me));
    await recordOrFail(l, records);
    if (check.ok) return { result: { ...result, check }, text: `${dev.name}: reservation released${theirs}; health check ok (log ${check.log}); it goes to the next job (those waiting first)` };
    return {
      result: { ...result, ok: false, check, failure: f, outOfService: true },
      text: `${dev.name}: reservation released${theirs}, but its health check FAILED - ${failedText(f!)}\n${dev.name} is now OUT OF SERVICE (no job gets a board left broken); orbital-lab enable ${dev.name} --check puts it back${check.log ? `; log ${check.log}` : ''}`,
      exit: f!.blame === 'os' ? EXIT.os : EXIT.lab,
    };
  } finally { lock?.release(); }
}

function waitOf(v: string | undefined): number {
  if (v === undefined) return 0;
  const ms = parseDuration(v);
  if (ms === undefined) throw new LabError('bad-input', 'bad-usage', `--wait must be a duration like 10m or 30s (got "${v}")`);
  return ms;
}

/**
 * Releases a device lock, unless a flash in this process left a request stuck on the device's
 * target (flash-stalled): it could still land on the disk once the device answers, on top of the
 * next user's flash. The lock then stays until this process has exited (a process with a thread
 * blocked in the kernel leaves only when the request ends), and the next user takes the stale lock over.
 */
function releaseUnlessStuck(lock: ReturnType<typeof acquireLock>, device: string): void {
  if (stuckTargets.has(device)) { process.stderr.write(`orbital-lab: ${device} stays locked by pid ${process.pid} until its stuck request ends and this process exits\n`); return; }
  lock.release();
}

/** Runs a command's body on a claimed device; a LabError it throws names the device (for --json and the lab log). */
async function onDevice<T>(dev: Device, f: () => Promise<T>): Promise<T> {
  try { return await f(); } catch (e) {
    if (e instanceof LabError && e.detail.device === undefined) (e.detail as Record<string, unknown>).device = dev.name;
    throw e;
  }
}

/** `--bmap F` / `--no-bmap` / neither (look beside the image), as flash, verify and run --image take them. */
function bmapOption(v: { bmap?: string; 'no-bmap'?: boolean }): string | null | undefined {
  return v['no-bmap'] ? null : v.bmap ? resolve(v.bmap) : undefined;
}

/** For claimDevice: a job that writes the device's disk needs a flash target. */
const needsTarget = (why: string) => (d: Device) => (d.flashTarget ? null : `has no flash target${why}`);

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === '') throw new LabError('bad-input', 'bad-usage', `missing ${what}\n\n${USAGE}`);
  return v;
}

type Handler = (args: string[], ctx: { lab: () => Lab; labFile: string; io: Io; signal: AbortSignal; json: boolean }) => Promise<{ result: unknown; text: string; exit?: number }>;

const commands: Record<string, Handler> = {
  async init(args, { labFile: file }) {
    const { values } = parseArgs({ args, options: { force: { type: 'boolean' } }, allowPositionals: false });
    if (existsSync(file) && !values.force) throw new LabError('bad-input', 'bad-usage', `${file} exists; --force overwrites it`);
    const text = starterLab(dirname(file));
    const parsed = parseLab(text, file);
    if (!parsed.ok) throw new LabError('bug', 'bug', `the starter lab file does not parse: ${parsed.issues.map((i) => formatIssue(file, i)).join('; ')}`, 'lab');
    writeFileSync(file, text);
    // The qemu device's disk image lives in the lab's state folder: make it, so `flash vm-1 IMG` works at once.
    mkdirSync(dirname(parsed.lab.devices.get('vm-1')!.flashTarget!), { recursive: true });
    const kernel = parsed.lab.devices.get('vm-1')!.qemu!.kernel!;
    return {
      result: { ok: true, file, devices: [...parsed.lab.devices.keys()], kernelBuilt: existsSync(kernel) },
      text: `wrote ${file}: vm-1 (the guest kernel in QEMU${existsSync(kernel) ? '' : `; build it first: npm run os:build`}) and hosted (the hosted OS: npm run os -- serve); try:\n  orbital-lab devices\n  orbital-lab boot vm-1\n  orbital-lab run vm-1 --boot 'set a 1' --expect '^a=1$'`,
    };
  },

  async scan(args, { lab, labFile }) {
    const { values } = parseArgs({ args, options: { all: { type: 'boolean' } } });
    // A lab file is optional here: scan is how a first one gets written.
    let l: Lab | null = null;
    if (existsSync(labFile)) l = lab();
    const r = scan(l, { all: values.all });
    return { result: { ok: true, lab: l?.path ?? null, ...r }, text: scanText(r, l?.path ?? null) };
  },

  async devices(args, { lab }) {
    const { values } = parseArgs({ args, options: { tag: { type: 'string', multiple: true } }, allowPositionals: false });
    const l = lab();
    const list = inventory(l, values.tag ?? []);
    // The last boot and run of each device, from the lab log (a log that cannot be read is said, not fatal).
    let hist: Map<string, DeviceHistory> = new Map();
    let histWhy: string | undefined;
    try {
      const h = await readHistory(l.stateDir);
      hist = new Map(h.devices.map((d) => [d.name, d]));
      if (h.damaged) histWhy = `the lab log ${h.file} is damaged at entry ${h.damaged.seq} (${h.damaged.reason}); boots shown are those before it - see orbital-lab history`;
    } catch (e) { histWhy = `lab log ${labLogPath(l.stateDir)} unreadable: ${(e as Error).message}`; }
    const line = queueAhead(l.stateDir, null);
    const waitingFor = (n: string) => line.filter((t) => t.wants.includes(n)).map((t) => ({ owner: t.owner, pid: t.pid, since: t.since, command: t.command, priority: t.priority }));
    const rows = list.map((d) => {
      const h = hist.get(d.name);
      const wq = waitingFor(d.name);
      const queued = wq.length ? `; ${wq.length} job(s) waiting for it (first: ${wq[0]!.owner}, ${wq[0]!.priority !== DEFAULT_PRIORITY ? `priority ${wq[0]!.priority}, ` : ''}since ${wq[0]!.since}, "${wq[0]!.command}")` : '';
      const lb = h?.lastBoot ? `; last boot ${h.lastBoot.ok ? `ok (${(h.lastBoot.bootMs / 1000).toFixed(3)} s)` : `FAILED (${h.lastBoot.blame}: ${h.lastBoot.code})`} ${new Date(h.lastBoot.time).toISOString()}` : '';
      const svc = h?.service?.state === 'out' ? `OUT OF SERVICE (${outText(h.service)}; orbital-lab enable ${d.name}); ` : '';
      const streak = h && h.labFailStreak.n > 0 && h.service?.state !== 'out' ? `; ${h.labFailStreak.n} lab failure(s) in a row (${h.labFailStreak.codes.join(', ')}; out of service at ${l.devices.get(d.name)!.health.maxLabFailures || 'never'})` : '';
      const who = svc + (d.state === 'in-use' ? `in use by ${d.holder!.owner} (pid ${d.holder!.pid}, since ${d.holder!.since}, "${d.holder!.command}")` : d.state === 'stale-lock' ? `free (stale lock: ${d.staleWhy})` : 'free');
      const rsv = inForce(h?.reservation) ? `; RESERVED ${heldWhom(h!.reservation!)}` : '';
      const lt = d.console.latencyTimer;
      const cons = (d.console.found ? d.console.found === 'qemu' ? d.console.spec : `${d.console.spec} -> ${d.console.found}` : `${d.console.spec} (NOT FOUND)`) + (lt && lt.now > 1 ? ` (USB-serial latency timer ${lt.now} ms; a boot lowers it to 1 ms when it may)` : '');
      const img = d.image ? d.image.signed ? ` (signed image ${d.image.signed.name} ${d.image.signed.version}, id ${d.image.signed.id.slice(0, 16)}…, part '${d.image.signed.part}')` : ` (${d.image.source === STDIN ? 'stdin' : d.image.source}${d.image.blake3 ? `, blake3 ${d.image.blake3.slice(0, 16)}…` : ''}${d.image.signedWhy ? `; ${d.image.signedWhy}` : ''})` : '';
      const fl = d.lastFlash ? `last flash ${d.lastFlash.status}${d.lastFlash.ended ? ` ${d.lastFlash.ended}` : ''}${img}` : 'never flashed';
      const pw = !d.power ? '' : d.power.state === 'on' ? `; power on (QEMU pid ${d.power.pid} since ${d.power.since}; console log ${d.power.consoleLog})` : d.power.state === 'stale' ? `; power off (stale record: ${d.power.why}; ${d.power.exit ? `it ended: ${d.power.exit.summary}` : 'how it ended is unknown'})` : '; power off';
      const kept = d.logger ? `; console logged by orbital-lab logger (pid ${d.logger.pid}) into ${d.logger.log} while no job holds it` : '';
      return `${d.name.padEnd(14)} ${d.kind.padEnd(12)} ${who}${rsv}${queued}${pw}${kept}\n${' '.repeat(15)}console ${cons}; target ${d.flashTarget ? `${d.flashTarget.path}${d.flashTarget.exists ? '' : ' (missing)'}` : 'none'}; ${fl}${lb}${streak}${d.tags.length ? `; tags ${d.tags.join(',')}` : ''}`;
    });
    const devices = list.map((d) => {
      const h = hist.get(d.name);
      const more = h ? { history: { boots: h.boots, lastBoot: h.lastBoot, runs: h.runs, runFailures: h.runFailures, labFailStreak: h.labFailStreak }, ...(h.service ? { service: h.service } : {}) } : {};
      const r = h?.reservation;
      return { ...d, waiting: waitingFor(d.name), ...more, inService: h?.service?.state !== 'out', reservation: inForce(r) ? heldJson(r!) : null };
    });
    return { result: { ok: true, lab: l.path, devices, ...(histWhy ? { historyError: histWhy } : {}) }, text: (rows.join('\n') || '(no devices)') + (histWhy ? `\n(${histWhy})` : '') };
  },

  async flash(args, { lab, signal, json }) {
    const { values, positionals } = parseArgs({ args, options: { bmap: { type: 'string' }, 'no-bmap': { type: 'boolean' }, force: { type: 'boolean' }, 'no-verify': { type: 'boolean' }, 'no-direct': { type: 'boolean' }, 'no-delta': { type: 'boolean' }, target: { type: 'string' }, trust: { type: 'string', multiple: true }, part: { type: 'string' }, tag: { type: 'string', multiple: true }, wait: { type: 'string' }, priority: { type: 'string' }, 'use-disabled': { type: 'boolean' } }, allowPositionals: true });
    const l = lab();
    if (values.bmap && values['no-bmap']) throw new LabError('bad-input', 'bad-usage', '--bmap and --no-bmap contradict each other');
    const trust = trustedKeys(l, values.trust);
    const opts = (dev: Device, image: string, onProgress: (p: FlashProgress) => void): FlashOptions => ({ device: dev, stateDir: l.stateDir, source: image, bmap: bmapOption(values), force: values.force, verify: !values['no-verify'], directIo: values['no-direct'] ? false : undefined, delta: values['no-delta'] ? false : undefined, requestedTarget: values.target, trust, part: values.part, signal, onProgress });
    // Several devices (DEVICE... IMAGE, or --tag): flashed side by side, see flashMany.
    if (values.tag?.length || positionals.length > 2) {
      if (values.wait !== undefined) throw new LabError('bad-input', 'bad-usage', '--wait waits for one device (DEVICE or @TAG); a flash onto several reports a busy one as failed instead');
      const image = positionals[positionals.length - 1];
      return flashMany(l, positionals.slice(0, -1), values.tag ?? [], need(image, 'IMAGE'), values.target, json, opts, values['use-disabled'], priorityOf(values.priority));
    }
    const devArg = need(positionals[0], 'DEVICE');
    const image = imagePath(need(positionals[1], 'IMAGE'));
    const { dev, lock } = await claimWaiting(l, devArg, `flash ${image}`, needsTarget(''), waitOf(values.wait), signal, json, values['use-disabled'], priorityOf(values.priority));
    const sink = progressSink({ json });
    try {
      const r = await onDevice(dev, () => flash(opts(dev, image, (p) => sink(p as unknown as Record<string, unknown> & { phase: string }))));
      sink.end();
      return { result: { ok: true, ...r }, text: flashText(dev.name, r) };
    } finally { sink.end(); releaseUnlessStuck(lock, dev.name); }
  },

  async verify(args, { lab, signal, json }) {
    const { values, positionals } = parseArgs({ args, options: { bmap: { type: 'string' }, 'no-bmap': { type: 'boolean' }, trust: { type: 'string', multiple: true }, part: { type: 'string' } }, allowPositionals: true });
    const l = lab();
    const dev = getDevice(l, need(positionals[0], 'DEVICE'));
    const image = resolve(need(positionals[1], 'IMAGE'));
    const trust = trustedKeys(l, values.trust);
    const lock = await lockDevice(l, dev, `verify ${image}`);
    const sink = progressSink({ json });
    try {
      const r = await verifyOnly({ device: dev, stateDir: l.stateDir, source: image, bmap: bmapOption(values), trust, part: values.part, signal, onProgress: (p) => sink(p as unknown as Record<string, unknown> & { phase: string }) });
      sink.end();
      if (!r.same) throw new LabError('io', 'verify-mismatch', `${dev.name}: target ${dev.flashTarget} does not hold ${image}`, 'lab');
      return { result: { ok: true, ...r }, text: `${dev.name}: target holds ${image} (${human(r.bytes)} compared through ${r.method}, ${r.mbPerS.toFixed(0)} MB/s; blake3 ${r.blake3})${orbimgText(r.orbimg)}` };
    } finally { sink.end(); lock.release(); }
  },
};

Object.assign(commands, {
  async power(args, { lab, signal }) {
    const { values, positionals } = parseArgs({ args, options: { append: { type: 'string' } }, allowPositionals: true });
    const l = lab();
    const dev = getDevice(l, need(positionals[0], 'DEVICE'));
    const action = need(positionals[1], 'on|off|cycle') as PowerAction;
    if (!['on', 'off', 'cycle'].includes(action)) throw new LabError('bad-input', 'bad-usage', `power action must be on, off or cycle (got "${action}")`);
    const lock = await lockDevice(l, dev, `power ${action}`);
    try {
      const r = await power(dev, action, { signal, lab: l, append: values.append });
      return { result: { ok: true, ...r }, text: r.qemu ? qemuPowerText(dev.name, r.qemu) : `${dev.name}: power ${action} done (${r.how}, ${Math.round(r.ms)} ms)${r.output ? `\n${r.output}` : ''}` };
    } finally { lock.release(); }
  },

  async boot(args, { lab, signal, json }) {
    const { values, positionals } = parseArgs({ args, options: { image: { type: 'string' }, bmap: { type: 'string' }, trust: { type: 'string', multiple: true }, part: { type: 'string' }, force: { type: 'boolean' }, log: { type: 'string' }, timeout: { type: 'string' }, retries: { type: 'string' }, append: { type: 'string' }, quiet: { type: 'boolean' }, wait: { type: 'string' }, priority: { type: 'string' }, 'use-disabled': { type: 'boolean' } }, allowPositionals: true });
    const retries = values.retries === undefined ? 0 : Number(values.retries);
    if (!Number.isInteger(retries) || retries < 0 || retries > 100) throw new LabError('bad-input', 'bad-usage', `--retries takes a count from 0 to 100 (got "${values.retries}")`);
    const l = lab();
    const devArg = need(positionals[0], 'DEVICE');
    const timeoutMs = timeoutOf(values.timeout);
    const { dev, lock } = await claimWaiting(l, devArg, 'boot', values.image ? needsTarget(' (--image)') : undefined, waitOf(values.wait), signal, json, values['use-disabled'], priorityOf(values.priority));
    const sink = progressSink({ json });
    try {
      const showLine = (ln: LogLine) => { if (!values.quiet && !json) process.stderr.write(`${(`+${(ln.t / 1000).toFixed(3)}`).padStart(9)} ${ln.text}\n`); };
      const r = await onDevice(dev, () => boot({ lab: l, device: dev, image: values.image ? resolve(values.image) : undefined, bmap: values.bmap ? resolve(values.bmap) : undefined, trust: trustedKeys({ ...l, trust: [] }, values.trust), part: values.part, force: values.force, logPath: values.log ? resolve(values.log) : undefined, timeoutMs, append: values.append, retries, signal, onLine: showLine, onFlashProgress: (p) => sink(p as unknown as Record<string, unknown> & { phase: string }) }));
      sink.end();
      const ms = r.milestones.map((m) => `${m.name} +${(m.t / 1000).toFixed(3)}s`).join(', ');
      const text = r.ok
        ? `${dev.name}: booted${r.attached ? ` (reset of the running QEMU pid ${r.attached.pid}, which keeps running)` : ''} in ${(r.bootMs! / 1000).toFixed(3)} s (stages: ${ms || 'none configured'}); log ${r.log}`
        : `${dev.name}: boot FAILED - ${r.failure!.blame === 'os' ? 'the OS failed' : 'a lab failure'} (${r.failure!.code}): ${r.failure!.message}\nstage reached: ${r.stage ?? 'none'}; log ${r.log}`;
      const tries = r.retried?.length ? `\n${r.retried.length} earlier attempt(s) failed on the lab's side and were retried: ${r.retried.map((x) => `${x.failure.code} (log ${x.log})`).join('; ')}` : '';
      const lt = r.latencyTimer?.error ? `\nnote: the USB-serial latency timer of ${r.latencyTimer.tty} stays at ${r.latencyTimer.was} ms (${r.latencyTimer.error}): ${r.latencyTimer.hint}` : '';
      return { result: r, text: text + tries + lt, exit: r.ok ? EXIT.ok : r.failure!.blame === 'os' ? EXIT.os : EXIT.lab };
    } finally { sink.end(); releaseUnlessStuck(lock, dev.name); }
  },

  async console(args, { lab, signal }) {
    const { values, positionals } = parseArgs({ args, options: { watch: { type: 'boolean' }, log: { type: 'string' }, 'power-on': { type: 'boolean' }, append: { type: 'string' } }, allowPositionals: true });
    const l = lab();
    const dev = getDevice(l, need(positionals[0], 'DEVICE'));
    const tty = process.stdin.isTTY;
    if (values.watch) {
      const sock = await watchConsole(l.stateDir, dev.name).catch((e: unknown) => {
        // Nobody attached, but a powered-on QEMU keeps its whole console in a file.
        const v = dev.kind === 'qemu' ? readVm(l.stateDir, dev.name) : null;
        if (v?.state === 'on' && e instanceof LabError) throw new LabError(e.kind, e.code, `${e.message}; its QEMU (pid ${v.rec.pid}) is on and writes its console to ${v.rec.consoleLog} (tail -f it)`, e.blame);
        throw e;
      });
      process.stderr.write(`[watching ${dev.name} read-only; Ctrl-C to leave]\n`);
      sock.pipe(process.stdout);
      await new Promise<void>((res) => { sock.once('close', () => res()); signal.addEventListener('abort', () => { sock.destroy(); res(); }, { once: true }); });
      return { result: { ok: true, device: dev.name, watched: true }, text: '' };
    }
    const lock = await lockDevice(l, dev, 'console');
    try {
      const s = await powerOnSession({ lab: l, device: dev, logPath: values.log ? resolve(values.log) : undefined, timeoutMs: 7 * 24 * 3600_000, keep: true, noPower: dev.kind !== 'qemu' && !values['power-on'], append: values.append, signal, running: 'join' });
      const how = s.attached ? `attached to the running QEMU pid ${s.attached.pid} (earlier output: ${s.attached.consoleLog})` : s.kept ? `taken from orbital-lab logger (earlier output: ${s.kept.log})` : `boot ${s.bootId}`;
      process.stderr.write(`[${dev.name} console; ${how}; log ${s.watch.logPath}; ${tty ? 'Ctrl-] q to quit, Ctrl-] ? for more' : 'ends with stdin (Ctrl-] q, r, ? work too)'}; watchers: orbital-lab console ${dev.name} --watch]\r\n`);
      // conserver's replay: what the board printed last while the logger kept it, then the live output.
      if (s.kept?.recent.length) { process.stderr.write(`[recent output, from the logger:]\r\n`); process.stdout.write(s.kept.recent); process.stderr.write(`\r\n[live:]\r\n`); }
      s.onBytes((b) => process.stdout.write(b));
      // Fatal patterns count for the whole session, not only until the first outcome: a device
      // joined long after its boot, or that printed "ready" and then panicked, is still seen to.
      const fatal: FatalLine[] = [];
      s.watch.onFatal((f) => { fatal.push(f); if (fatal.length <= 20) process.stderr.write(`\r\n[${dev.name}: fatal pattern "${f.name}" at line ${f.line} of ${s.watch.logPath}: ${f.text.slice(0, 200)}]\r\n`); });
      let endedBy: BootOutcome['failure'] | undefined;
      let ended!: () => void;
      const done = new Promise<void>((r) => { ended = r; });
      if (tty) process.stdin.setRawMode(true);
      // Ctrl-] (telnet's escape) and one key: q or . quits, r resets the device (power cycle), ?
      // lists them, Ctrl-] again sends one Ctrl-] to the device. Anything else after it is dropped.
      const resets: Array<{ ok: boolean; code: string }> = [];
      let escaped = false;
      let quit = false;
      const say = (t: string) => process.stderr.write(`\r\n[${dev.name}: ${t}]\r\n`);
      const command = (k: number) => {
        if (k === 0x71 || k === 0x2e) { quit = true; ended(); return; }
        if (k === 0x1d) { s.write(Uint8Array.of(0x1d)); return; }
        if (k === 0x72) {
          say('reset...');
          void s.reset().then((h) => { resets.push({ ok: true, code: '' }); say(`reset (${h})`); }, (e: unknown) => {
            const le = e instanceof LabError ? e : new LabError('io', 'power-failed', String(e), 'lab');
            if (le.blame !== 'usage') resets.push({ ok: false, code: le.code });
            say(`reset failed (${le.code}): ${le.message}`);
          });
          return;
        }
        if (k === 0x62) {
          void s.sendBreak().then(() => say('BREAK sent (250 ms)'), (e: unknown) => say(`no BREAK: ${(e as Error).message}`));
          return;
        }
        say('Ctrl-] then: q or . quit - r reset the device (QEMU: system_reset; a board: its power cycle) - b send a BREAK (a board: magic SysRq) - Ctrl-] send Ctrl-] - ? this help');
      };
      process.stdin.on('data', (b: Buffer) => {
        let from = 0;
        for (let i = 0; i < b.length && !quit; i++) {
          if (escaped) { escaped = false; from = i + 1; command(b[i]!); continue; }
          if (b[i] === 0x1d) { if (i > from) s.write(b.subarray(from, i)); escaped = true; from = i + 1; }
        }
        if (!quit && !escaped && from < b.length) s.write(b.subarray(from));
      });
      // (a Ctrl-] as stdin's last byte quits, as it did before Ctrl-] took a key after it)
      process.stdin.on('end', () => setTimeout(ended, escaped ? 0 : 500));
      signal.addEventListener('abort', () => ended(), { once: true });
      // The device going away ends the console, whenever it happens (before the boot's outcome or long after).
      let closing = false;
      void s.gone.then((f) => { if (closing) return; endedBy = f; process.stderr.write(`\r\n[${f.message}]\r\n`); ended(); });
      await done;
      if (tty) process.stdin.setRawMode(false);
      process.stdin.pause();
      // Each reset from the console is a power cycle in the lab log, as `orbital-lab power DEVICE cycle` is.
      if (resets.length) await record(l, resets.map((r) => ({ action: 'power', args: { device: dev.name, action: 'cycle', ok: r.ok ? 1 : 0, code: r.code } })), (t) => process.stderr.write(t));
      s.watch.endNote = `console closed${endedBy ? ` (${endedBy.code})` : ''}`;
      closing = true;
      await s.stop();
      // How the session went: the device's end (console gone: the lab's; its QEMU exited because
      // of the guest: the OS's), else the first fatal line (the OS failed), else ok.
      const failure: BootOutcome['failure'] | undefined = endedBy?.blame === 'lab' ? endedBy
        : fatal.length ? { blame: 'os', code: 'os-fatal', message: `fatal pattern "${fatal[0]!.name}" at line ${fatal[0]!.line}: ${fatal[0]!.text.slice(0, 200)}${fatal.length > 1 ? ` (${fatal.length} fatal lines in all)` : ''}`, line: fatal[0]!.line, text: fatal[0]!.text }
        : endedBy;
      const keeps = s.attached && !s.attached.exit && !endedBy ? `; QEMU pid ${s.attached.pid} keeps running` : '';
      return {
        result: { ok: !failure, device: dev.name, bootId: s.bootId, log: s.watch.logPath, ...(s.attached ? { attached: s.attached } : {}), ...(fatal.length ? { fatal } : {}), ...(failure ? { failure } : {}) },
        text: `\r\n[${dev.name} console closed${keeps}; log ${s.watch.logPath}]${failure ? `\r\n${dev.name}: ${failure.blame === 'os' ? 'the OS failed' : 'a lab failure'} (${failure.code}): ${failure.message}` : ''}`,
        exit: !failure ? EXIT.ok : failure.blame === 'os' ? EXIT.os : EXIT.lab,
      };
    } finally { lock.release(); }
  },
  async run(args, { lab, signal, json }) {
    const { values, tokens } = parseArgs({ args, options: { boot: { type: 'boolean' }, expect: { type: 'string', multiple: true }, timeout: { type: 'string' }, 'boot-timeout': { type: 'string' }, 'char-delay': { type: 'string' }, 'line-kill': { type: 'boolean' }, log: { type: 'string' }, junit: { type: 'string' }, quiet: { type: 'boolean' }, image: { type: 'string' }, bmap: { type: 'string' }, 'no-bmap': { type: 'boolean' }, part: { type: 'string' }, trust: { type: 'string', multiple: true }, force: { type: 'boolean' }, wait: { type: 'string' }, priority: { type: 'string' }, 'use-disabled': { type: 'boolean' } }, allowPositionals: true, tokens: true });
    // Order matters: each --expect belongs to the command before it.
    let device: string | undefined;
    const steps: Step[] = [];
    for (const t of tokens) {
      if (t.kind === 'positional') { if (device === undefined) device = t.value; else steps.push({ cmd: t.value, expect: [] }); }
      else if (t.kind === 'option' && t.name === 'expect') {
        const last = steps[steps.length - 1];
        if (!last) throw new LabError('bad-input', 'bad-usage', `--expect ${t.value} comes before any command: it checks the output of the command before it`);
        let regex: RegExp;
        try { regex = new RegExp(t.value!); } catch (e) { throw new LabError('bad-input', 'bad-usage', `--expect ${t.value}: not a regular expression (${(e as Error).message})`); }
        last.expect.push({ name: t.value!, source: t.value!, regex });
      }
    }
    const l = lab();
    const devArg = need(device, 'DEVICE');
    if (!devArg.startsWith('@')) getDevice(l, devArg);
    if (steps.length === 0) throw new LabError('bad-input', 'bad-usage', `missing CMD: what to type on ${devArg}'s console\n\n${usageOf('run')}`);
    const dur = (v: string | undefined, flag: string) => {
      if (v === undefined) return undefined;
      const ms = flag === '--char-delay' && /^\s*0+(\.0+)?\s*(ms|s)?\s*$/.test(v) ? 0 : parseDuration(v);
      if (ms === undefined) throw new LabError('bad-input', 'bad-usage', `${flag} must be a duration like ${flag === '--char-delay' ? '10ms' : '30s'} (got "${v}")`);
      return ms;
    };
    const orphan = (['bmap', 'no-bmap', 'part', 'trust', 'force'] as const).filter((k) => values[k] !== undefined);
    if (values.image === undefined && orphan.length) throw new LabError('bad-input', 'bad-usage', `${orphan.map((k) => `--${k}`).join(', ')} go${orphan.length > 1 ? '' : 'es'} with --image IMG (run flashes only with --image)`);
    if (values.bmap && values['no-bmap']) throw new LabError('bad-input', 'bad-usage', '--bmap and --no-bmap contradict each other');
    const junitPath = values.junit === undefined ? undefined : resolve(values.junit);
    if (junitPath !== undefined && (values.junit === '' || !existsSync(dirname(junitPath)))) throw new LabError('bad-input', 'bad-usage', `--junit ${values.junit}: ${values.junit === '' ? 'needs a file name' : `its folder ${dirname(junitPath)} does not exist`}`);
    const waitMs = waitOf(values.wait);
    const { dev, lock } = await claimWaiting(l, devArg, `run ${steps.map((x) => x.cmd).join('; ').slice(0, 200)}`, values.image !== undefined ? needsTarget(' (--image)') : undefined, waitMs, signal, json, values['use-disabled'], priorityOf(values.priority));
    let sinkEnd: (() => void) | undefined;
    try {
      const showLine = (ln: LogLine) => { if (!values.quiet && !json) process.stderr.write(`${(`+${(ln.t / 1000).toFixed(3)}`).padStart(9)} ${ln.text}\n`); };
      const started = new Date();
      const t0 = performance.now();
      const sink = progressSink({ json });
      sinkEnd = () => sink.end();
      const flashOpts = values.image === undefined ? {} : { image: imagePath(values.image), bmap: bmapOption(values), trust: trustedKeys({ ...l, trust: [] }, values.trust), part: values.part, force: values.force, onFlashProgress: (p: FlashProgress) => sink(p as unknown as Record<string, unknown> & { phase: string }) };
      const r = await onDevice(dev, () => runCommands({ lab: l, device: dev, steps, ...flashOpts, boot: values.boot, timeoutMs: dur(values.timeout, '--timeout'), bootTimeoutMs: dur(values['boot-timeout'], '--boot-timeout'), charDelayMs: dur(values['char-delay'], '--char-delay'), lineKill: values['line-kill'], logPath: values.log ? resolve(values.log) : undefined, signal, onLine: showLine }));
      sink.end();
      const done = r.steps.filter((x) => x.echo && x.expect.every((e) => e.line !== null)).length;
      let junit: { junit?: string; junitError?: string } = {};
      if (junitPath) {
        // Written whatever the outcome (a failed run is what the report is for); a file that
        // cannot be written is the lab's failure, after the run's own result is known.
        try { writeDurably(junitPath, junitOf({ steps, result: r, started, ms: performance.now() - t0 })); junit = { junit: junitPath }; }
        catch (e) { junit = { junitError: `cannot write the JUnit report ${junitPath}: ${(e as Error).message}` }; }
      }
      const fields = Object.entries(r.fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
      const tail = `${fields ? `; fields ${fields}` : ''}${r.log ? `; log ${r.log}` : ''}${junit.junit ? `; JUnit report ${junit.junit}` : ''}${junit.junitError ? `\n${junit.junitError}` : ''}`;
      const flashLine = r.flash ? `${flashText(dev.name, r.flash)}\n` : '';
      const text = flashLine + (r.ok
        ? `${dev.name}: ${r.steps.length} command(s) echoed, ${r.steps.reduce((n, x) => n + x.expect.length, 0)} expectation(s) met${tail}`
        : `${dev.name}: run FAILED at ${r.steps.length ? `command ${r.steps.length} (${JSON.stringify(r.steps[r.steps.length - 1]!.cmd)}; ${done} before it passed)` : r.failure && 'stage' in r.failure ? 'the flash' : 'the boot'} - ${r.failure!.blame === 'os' ? 'the OS failed' : 'a lab failure'} (${r.failure!.code}): ${r.failure!.message}${tail}`);
      return { result: { ...r, ...junit }, text, exit: r.ok ? (junit.junitError ? EXIT.lab : EXIT.ok) : r.failure!.blame === 'os' ? EXIT.os : EXIT.lab };
    } finally { sinkEnd?.(); releaseUnlessStuck(lock, dev.name); }
  },

  async history(args, { lab }) {
    const { values, positionals } = parseArgs({ args, options: { events: { type: 'boolean' }, limit: { type: 'string' }, since: { type: 'string' } }, allowPositionals: true });
    const l = lab();
    if (positionals[0]) getDevice(l, positionals[0]);
    if ((values.limit !== undefined || values.since !== undefined) && !values.events) throw new LabError('bad-input', 'bad-usage', '--limit and --since go with --events');
    if (values.events) return eventsCommand(l, positionals[0], values.limit, values.since);
    const h = await readHistory(l.stateDir);
    const devices = positionals[0] ? h.devices.filter((d) => d.name === positionals[0]) : h.devices;
    const when = (t: number) => (t > 0 ? new Date(t).toISOString() : '?');
    const rows = devices.map((d) => {
      const f = d.lastFlash ? `; last ${d.lastFlash.status}${d.lastFlash.code ? ` (${d.lastFlash.code})` : ''} ${d.lastFlash.image}${d.lastFlash.blake3 ? `, blake3 ${d.lastFlash.blake3.slice(0, 16)}…` : ''} at ${when(d.lastFlash.time)}` : '';
      const b = d.lastBoot ? `; last ${d.lastBoot.ok ? `ok (stage ${d.lastBoot.stage || 'none'}, ${(d.lastBoot.bootMs / 1000).toFixed(3)} s)` : `FAILED (${d.lastBoot.blame}: ${d.lastBoot.code}, stage ${d.lastBoot.stage || 'none'})`} at ${when(d.lastBoot.time)}` : '';
      return `${d.name.padEnd(14)} flashes ${d.flashes} (${d.flashFailures} failed)${f}\n${' '.repeat(15)}boots ${d.boots} (${d.bootFailuresOs} the OS's failures, ${d.bootFailuresLab} the lab's)${b}\n${' '.repeat(15)}power ${d.power || 'never switched'}${d.powerFailures ? ` (${d.powerFailures} failed)` : ''}; runs ${d.runs} (${d.runFailures} failed)${d.service ? `\n${' '.repeat(15)}${d.service.state === 'out' ? 'OUT OF SERVICE' : 'in service'} since ${when(d.service.time)}, by ${d.service.by}${d.service.reason ? `: ${d.service.reason}` : ''}` : ''}${d.labFailStreak.n ? `; ${d.labFailStreak.n} lab failure(s) in a row (${d.labFailStreak.codes.join(', ')})` : ''}${d.reservation ? `\n${' '.repeat(15)}${reservationText(d.reservation)}` : ''}${d.idleFatal ? `\n${' '.repeat(15)}${d.idleFatal.n} fatal line(s) recorded while no job held the console; the last at ${when(d.idleFatal.time)} (pattern "${d.idleFatal.pattern}"): ${d.idleFatal.text.slice(0, 200)}` : ''}`;
    });
    const dmg = h.damaged ? `\nthe lab log ${h.file} is DAMAGED at entry ${h.damaged.seq} (${h.damaged.reason}: ${h.damaged.message}): the history above is that of the ${h.entries} entries before it, and nothing more can be recorded until the file is moved aside (orbital-lab replay ${h.file} shows the damage)` : '';
    return { result: { ok: !h.damaged, ...h, devices }, text: (rows.length ? `${rows.join('\n')}\n(${h.entries} entries in ${h.file}; orbital-lab replay verifies it)` : `nothing recorded yet in ${h.file}`) + dmg, exit: h.damaged ? EXIT.lab : EXIT.ok };
  },

  async disable(args, { lab, signal }) { return serviceCommand('out', args, lab(), signal); },
  async reserve(args, { lab, signal, json }) { return reserveCommand(args, lab(), signal, json); },
  async release(args, { lab, signal }) { return releaseCommand(args, lab(), signal); },
  async check(args, { lab, signal, json }) { return checkCommand(args, lab(), signal, json); },
  async enable(args, { lab, signal }) { return serviceCommand('in', args, lab(), signal); },

  async logger(args, { lab, signal, json }) {
    const { values, positionals } = parseArgs({ args, options: { tag: { type: 'string', multiple: true }, rotate: { type: 'string' } }, allowPositionals: true });
    const l = lab();
    const tags = values.tag ?? [];
    const rotate = values.rotate === undefined ? undefined : parseSize(values.rotate);
    if (rotate !== undefined && !(rotate >= 4096)) throw new LabError('bad-input', 'bad-usage', `--rotate takes a size of at least 4 KiB, like 64MiB or 1G (got "${values.rotate}")`);
    const devs = positionals.length ? positionals.map((n) => getDevice(l, n))
      : [...l.devices.values()].filter((d) => hasConsolePort(d) && tags.every((t) => d.tags.includes(t)));
    if (devs.length === 0) throw new LabError('bad-input', 'bad-usage', `no serial-board device with a console port in the lab file${tags.length ? ` with tag ${tags.join(', ')}` : ''}: the logger keeps serial-board consoles (a qemu device's QEMU logs its console itself)`);
    const say = (e: KeeperEvent) => {
      if (json) { process.stdout.write(JSON.stringify(e) + '\n'); return; }
      const t = e.event === 'logging' ? `logging console ${e.port} into ${e.log}`
        : e.event === 'yielded' ? `console given to ${e.to}`
        : e.event === 'back' ? `console back (${e.port}), logging again`
        : e.event === 'port-gone' ? `console gone (${e.why}); looking for it every second`
        : e.event === 'rotated' ? `log continued in ${e.log}`
        : e.event === 'waiting' ? `not taking the console yet: ${e.why}`
        : e.event === 'recorded' ? `the fatal line (line ${e.line}) is in the lab log as seq ${e.seq} (orbital-lab history ${e.device} --events)`
        : e.event === 'record-failed' ? `could not record the fatal line in the lab log: ${e.why}`
        : `fatal pattern "${e.pattern}" at line ${e.line} while no job held it: ${e.text.slice(0, 200)}`;
      process.stdout.write(`${new Date().toISOString()} ${e.device}: ${t}\n`);
    };
    const keepers: Keeper[] = [];
    try {
      for (const d of devs) keepers.push(await Keeper.start(l, d, say, rotate));
      if (!json) process.stderr.write(`orbital-lab logger: keeping ${keepers.length} console(s) (${keepers.map((k) => k.device.name).join(', ')}); Ctrl-C stops\n`);
      await new Promise<void>((res) => { if (signal.aborted) res(); else signal.addEventListener('abort', () => res(), { once: true }); });
    } finally { for (const k of keepers) await k.stop().catch(() => {}); }
    return {
      result: { ok: true, devices: keepers.map((k) => ({ device: k.device.name, log: k.log, logs: k.logs, lines: k.lines })) },
      text: `orbital-lab logger stopped: ${keepers.map((k) => `${k.device.name} ${k.lines} line(s) in ${k.log}`).join('; ')}`,
    };
  },

  async capture(args, { lab, signal, json }) {
    const { values, positionals } = parseArgs({ args, options: { o: { type: 'string', short: 'o' }, out: { type: 'string' }, until: { type: 'string' }, for: { type: 'string' }, append: { type: 'string' } }, allowPositionals: true });
    const l = lab();
    const dev = getDevice(l, need(positionals[0], 'DEVICE'));
    const out = resolve(need(values.o ?? values.out, '-o FILE'));
    const untilSeq = values.until !== undefined ? Number(values.until) : undefined;
    if (untilSeq !== undefined && !(Number.isInteger(untilSeq) && untilSeq >= 0)) throw new LabError('bad-input', 'bad-usage', `--until takes an entry seq (got "${values.until}")`);
    const forMs = values.for ? parseDuration(values.for) : undefined;
    if (values.for && !forMs) throw new LabError('bad-input', 'bad-usage', `--for takes a duration like 30s (got "${values.for}")`);
    const lock = await lockDevice(l, dev, `capture ${out}`);
    let lastTick = 0;
    try {
      const r = await captureTrace({ lab: l, device: dev, out, untilSeq, forMs, signal, append: values.append, onProgress: (p) => {
        const now = Date.now();
        if (now - lastTick < 500) return;
        lastTick = now;
        if (json) process.stdout.write(JSON.stringify({ event: 'progress', phase: 'capture', ...p }) + '\n');
        else if (process.stderr.isTTY) process.stderr.write(`\r\x1b[Kcapture seq ${p.seq}, ${p.written} entries written, ${p.reconnects} reconnects`);
      } });
      if (!json && process.stderr.isTTY) process.stderr.write('\n');
      const fatalText = r.fatal?.length ? `\n${dev.name}: the OS failed - fatal pattern "${r.fatal[0]!.name}" at console line ${r.fatal[0]!.line}: ${r.fatal[0]!.text.slice(0, 200)}${r.fatal.length > 1 ? ` (${r.fatal.length} fatal lines in all)` : ''}` : '';
      const text = `${dev.name}: ${r.written} entries captured into ${r.file} (${r.resumedFrom ? `resumed after entry ${r.resumedFrom - 1}; ` : ''}last seq ${r.lastSeq}; ${r.reconnects} reconnects, ${r.duplicatesSkipped} duplicates skipped); stopped: ${r.stopped}${r.detail ? ` (${r.detail})` : ''}${fatalText}`;
      // The trace holds what was captured either way; the exit says whether the OS failed (a fatal
      // line, or its QEMU exited because of the guest) or the lab did (device gone, new log).
      const osFailed = !!r.fatal?.length || r.deviceFailure?.blame === 'os';
      const exit = osFailed ? EXIT.os : r.stopped === 'device-gone' || r.stopped === 'new-log' ? EXIT.lab : EXIT.ok;
      // ok agrees with the exit code, as for boot and console (the file is good either way: written says how much).
      return { result: { ok: exit === EXIT.ok, ...r }, text, exit };
    } finally { lock.release(); }
  },
  async replay(args) {
    const { positionals } = parseArgs({ args, options: {}, allowPositionals: true });
    const file = resolve(need(positionals[0], 'FILE'));
    const r = await replayTrace(file);
    let text: string;
    if (!r.verify.ok) text = `${file}: chain FAILS at seq ${r.verify.failure!.seq} (${r.verify.failure!.reason}): ${r.verify.failure!.message}\nreplayed ${r.replayed} entries before it, ${r.checkpoints} checkpoints matched`;
    else if (r.divergence) {
      const dv = r.divergence;
      text = `${file}: replay DIVERGES: checkpoint at seq ${dv.seq} records ${dv.domain} state ${dv.recorded.slice(0, 16)}..., replay gives ${dv.replayed.slice(0, 16)}...\n` +
        `the first divergent entry is in seqs ${dv.since + 1}..${dv.seq - 1} (after the last agreeing checkpoint ${dv.since < 0 ? '(none)' : dv.since}):\n` +
        dv.entries.slice(0, 20).map((e) => `  ${e.seq} ${e.kind} ${e.domain} actor ${e.actor} ${JSON.stringify(e.payload).slice(0, 120)}`).join('\n') +
        `\nreplayed ${dv.domain} state across that window:\n` + (dv.changes.map((c) => `  ${c.path}: ${JSON.stringify(c.before)} -> ${JSON.stringify(c.after)}`).join('\n') || '  (no change)');
    } else text = `${file}: ok - ${r.verify.count} entries verified and replayed; ${r.checkpoints} checkpoint(s), every one matches (${Object.entries(r.final).map(([k, v]) => `${k} ${v.slice(0, 16)}`).join(', ')})`;
    return { result: r, text, exit: r.ok ? EXIT.ok : EXIT.os };
  },

  async 'verify-trace'(args) {
    const { positionals } = parseArgs({ args, options: {}, allowPositionals: true });
    const file = resolve(need(positionals[0], 'FILE'));
    const v = await verifyTrace(file);
    const f = v.failure ?? (v.error ? { seq: v.error.seq ?? 0, reason: v.error.reason, message: v.error.message } : null);
    return { result: { ok: v.ok, file, count: v.count, failure: f }, text: v.ok ? `${file}: ok, ${v.count} entries` : `${file}: FAILS at seq ${f?.seq} (${f?.reason}): ${f?.message}`, exit: v.ok ? EXIT.ok : EXIT.os };
  },

  async export(args) {
    const { values, positionals } = parseArgs({ args, options: { format: { type: 'string' }, o: { type: 'string', short: 'o' } }, allowPositionals: true });
    const file = resolve(need(positionals[0], 'FILE'));
    if ((values.format ?? 'chrome') !== 'chrome') throw new LabError('bad-input', 'bad-usage', `--format: only chrome is supported (got "${values.format}")`);
    const out = resolve(values.o ?? file.replace(/(\.orbtrace)?$/, '.chrome.json'));
    const r = await exportChrome(file, out);
    return { result: { ok: true, ...r }, text: `${out}: ${r.events} events (${r.actions} actions) from ${r.entries} entries${r.verified ? '' : ' - the trace fails verification after that; the rest is left out'}; open it in https://ui.perfetto.dev` };
  },
} satisfies Record<string, Handler>);

function qemuPowerText(name: string, q: NonNullable<PowerResult['qemu']>): string {
  const stale = q.staleRecord ? ` (an old power record was stale: ${q.staleRecord})` : '';
  switch (q.done) {
    case 'started': return `${name}: power on - QEMU pid ${q.pid} runs in the background${stale}; console log ${q.consoleLog}\nattach: orbital-lab console|boot|capture ${name}; stop: orbital-lab power ${name} off`;
    case 'already-on': return `${name}: already on (QEMU pid ${q.pid}, since ${q.since}); console log ${q.consoleLog}`;
    case 'reset': return `${name}: power cycle - QEMU pid ${q.pid} reset (QMP system_reset); console log ${q.consoleLog}`;
    case 'acpi': return `${name}: power off - the guest shut down on the ACPI power button (QEMU pid ${q.pid})`;
    case 'quit': return `${name}: power off - QEMU pid ${q.pid} quit over QMP (the guest ignored the ACPI power button)`;
    case 'kill': return `${name}: power off - QEMU pid ${q.pid} did not answer QMP and was killed (SIGKILL)`;
    case 'already-off': return `${name}: already off`;
    case 'stale-record': return `${name}: already off - its power record was stale (${q.staleRecord}); removed`;
  }
}

/** A lab file to start from, for a lab file in `dir`: the guest kernel and the hosted OS of this checkout. */
function starterLab(dir: string): string {
  const root = resolve(import.meta.dirname, '..');
  const rel = (p: string) => { const r = relative(dir, p); return r.startsWith('..') || isAbsolute(r) ? p : r || '.'; };
  return `# Orbital lab file (docs/lab.md). Paths are relative to this file.
version: 1
devices:
  # The guest kernel in QEMU (npm run os:build builds it). Its console is COM1, its link virtio.
  vm-1:
    kind: qemu
    tags: [x86_64, guest]
    qemu:
      kernel: ${rel(join(root, 'os-image/kernel/target/kernel/orbital-kernel.elf'))}
      memory: 256
    flash: { target: .orbital/lab/images/vm-1.img }   # a disk image file for \`flash vm-1 IMG\`
${GUEST_BOOT}    timeouts: { boot: 60s }
  # The hosted OS, reached over its link socket (start it: npm run os -- serve).
  hosted:
    kind: serial-board
    tags: [hosted]
    link: { socket: ${rel(resolve('.orbital/hosted/link.sock'))} }
  # A real board: a USB-serial console found by its by-id name, power switched by commands.
  # (orbital-lab logger keeps its console logged between jobs.)
  # board-1:
  #   kind: serial-board
  #   console: { by-id: usb-FTDI_FT232R_USB_UART_A12345-if00-port0, baud: 115200 }
  #   power: { kind: command, on: "relay 3 on", off: "relay 3 off" }   # or kind: manual
  #   flash: { target: /dev/disk/by-id/usb-Generic_STORAGE_DEVICE_000000000819-0:0 }
  #   boot: { success: "login:", fatal: ["Kernel panic"] }
  #   health:   # enable --check boots it, then types these and checks the answers
  #     check: [ { run: "uname -r", expect: "^\\\\d+\\\\." } ]
`;
}

/**
 * Records what a command did in the lab log; a failure to record is said, never the command's
 * failure. A device that reaches its health.max-lab-failures
 * with it is taken out of service in the same append: said on stderr, and returned (the command's
 * JSON result carries it as `outOfService`).
 */
async function record(l: Lab, recs: LabRecord[], err: (s: string) => void): Promise<Array<{ device: string; reason: string; seq: number }>> {
  if (recs.length === 0) return [];
  const out: Array<{ device: string; reason: string; seq: number }> = [];
  try {
    await recordLab(l.stateDir, recs, { maxLabFailures: (d) => l.devices.get(d)?.health.maxLabFailures ?? 0, onService: (x) => out.push(x) });
  } catch (e) { err(`orbital-lab: warning: not recorded in the lab log ${labLogPath(l.stateDir)}: ${(e as Error).message}`); }
  for (const x of out) err(`orbital-lab: ${x.device} is now OUT OF SERVICE: ${x.reason}. No job will use it until it is fixed and put back: orbital-lab enable ${x.device}`);
  return out;
}

/**
 * What a command did, as lab-domain records (docs/lab-domain.md): flashes, power switches, boots
 * and runs, whether they worked or not. Nothing is recorded for bad usage or a device someone else
 * holds - nothing happened to the device then.
 */
function labRecordsOf(cmd: string, args: string[], l: Lab, result: unknown, e: LabError | null): LabRecord[] {
  if (!['flash', 'power', 'boot', 'run'].includes(cmd)) return [];
  if (e && (e.blame === 'usage' || e.code === 'device-locked' || e.code === 'out-of-service')) return [];
  const r = (result ?? {}) as Record<string, any>;
  // A flash onto several devices: one record per device that was flashed or failed (not one held by someone else).
  if (cmd === 'flash' && Array.isArray(r.flashes)) {
    return (r.flashes as FlashOne[]).filter((f) => f.ok || (f.error.code !== 'device-locked' && f.error.code !== 'out-of-service' && f.error.blame !== 'usage'))
      .map((f) => (f.ok ? flashRecord(f.device, f, f.source.path, null) : flashRecord(f.device, null, String(r.image ?? ''), f.error as { code?: string })));
  }
  // The device the command named: from its result, else the first argument that names one (a flag's value may come first).
  const named = typeof r.device === 'string' ? r.device : typeof e?.detail.device === 'string' ? e.detail.device : undefined;
  const device = named !== undefined && l.devices.has(named) ? named : args.find((a) => l.devices.has(a));
  if (!device) return [];
  // (the arguments after the one that named the device: its name, or the @TAG it was picked by)
  const at = args.includes(device) ? args.indexOf(device) : args.findIndex((a) => a.startsWith('@'));
  const after = (k: number) => args.slice(at + 1).filter((a) => !a.startsWith('-'))[k];
  const code = (x: { code?: string } | undefined | null) => String(x?.code ?? '').slice(0, 64);
  const flashRec = (f: Record<string, any> | null, image: string): LabRecord => flashRecord(device, f, image, e);
  const imageArg = () => after(0) ?? '';
  const bootRec = (ok: boolean, stage: unknown, f: { blame?: string; code?: string } | undefined | null, bootMs: unknown): LabRecord => bootRecord(device, r.bootId, ok, stage, f, bootMs);
  switch (cmd) {
    case 'flash': return [flashRec(e ? null : r, e ? imageArg() : String(r.source?.path ?? imageArg()))];
    case 'power': {
      const action = after(0);
      if (!['on', 'off', 'cycle'].includes(action ?? '')) return [];
      return [{ action: 'power', args: { device, action: action!, ok: e ? 0 : 1, code: e ? code(e) : '' } }];
    }
    case 'boot': {
      const out: LabRecord[] = [];
      const img = args[args.indexOf('--image') + 1];
      if (r.flash) out.push(flashRec(r.flash, String(r.flash.source?.path ?? img ?? '')));
      // A flash that failed before the boot: the device was never powered, so no boot is recorded.
      else if (e && args.includes('--image') && /^flash before boot failed/.test(e.message)) return [flashRec(null, img ?? '')];
      out.push(bootRec(!e && !!r.ok, r.stage, e ? { blame: e.blame === 'os' ? 'os' : 'lab', code: e.code } : r.failure, r.bootMs));
      return out;
    }
    case 'run': {
      const f = e ? { blame: e.blame === 'os' ? 'os' : 'lab', code: e.code } : r.failure;
      // run --boot booted the device first: that boot is recorded as a boot too.
      const bt = r.boot as Record<string, any> | undefined;
      const booted: LabRecord[] = bt ? [bootRec(!!bt.ok, bt.stage, bt.failure, bt.bootMs)] : [];
      // run --image flashed first: recorded as a flash (written, skipped, or failed - then nothing was booted).
      const fr = r.flash as Record<string, any> | undefined;
      const ff = r.failure?.stage === 'flash' ? r.failure : null;
      const img = args[args.indexOf('--image') + 1] ?? '';
      const flashed: LabRecord[] = fr ? [flashRec(fr, String(fr.source?.path ?? img))]
        : ff ? [flashRecord(device, null, img, ff)] : [];
      return [...flashed, ...booted, { action: 'run', args: { device, ok: !e && r.ok ? 1 : 0, commands: Array.isArray(r.steps) ? r.steps.length : 0, blame: f ? String(f.blame) : '', code: code(f) } }];
    }
  }
  return [];
}

/** A lab-log `boot` record: how a boot ended (`f`: its failure, if it failed). */
function bootRecord(device: string, bootId: unknown, ok: boolean, stage: unknown, f: { blame?: string; code?: string } | undefined | null, bootMs: unknown): LabRecord {
  return { action: 'boot', args: { device, boot_id: String(bootId ?? '').slice(0, 64), ok: ok ? 1 : 0, stage: String(stage ?? '').slice(0, 64), blame: f ? String(f.blame) : '', code: String(f?.code ?? '').slice(0, 64), boot_ms: Math.max(0, Math.round(Number(bootMs ?? 0))) } };
}

/** A lab-log `flash` record: of a flash's result, or (f null) of one that failed with `failure`. */
function flashRecord(device: string, f: Record<string, any> | null, image: string, failure: { code?: string } | null): LabRecord {
  return { action: 'flash', args: { device, image: image.slice(0, 4096), status: f ? f.status : 'failed', blake3: f ? String(f.blake3 ?? '') : '', bytes: f ? Number(f.bytesWritten ?? 0) : 0, code: String(failure?.code ?? '').slice(0, 64) } };
}

/** Registers another command (power/boot/console/trace modules add theirs). */
export function addCommand(name: string, h: Handler): void { commands[name] = h; }

/** IMAGE as a path; `-` is stdin (streamed, never compared first: it cannot be read twice), refused on a terminal. */
function imagePath(arg: string): string {
  if (arg !== STDIN) return resolve(arg);
  // (isatty, not process.stdin: that would make fd 0 non-blocking under the flash's reads)
  if (isatty(0)) throw new LabError('bad-input', 'bad-usage', 'IMAGE "-" reads the image from stdin, which is a terminal: pipe an image in (xz -dc os.img.xz | orbital-lab flash DEVICE -)');
  return STDIN;
}

/** The commands `main` knows. */
export const COMMANDS = (): string[] => Object.keys(commands);

/** The usage lines of one command (its entries in USAGE, with their continuation lines). */
export function usageOf(cmd: string): string {
  const lines = USAGE.split('\n');
  const picked: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith(`  ${cmd} `) && lines[i] !== `  ${cmd}`) continue;
    picked.push(lines[i]!);
    while (i + 1 < lines.length && /^ {6,}\S/.test(lines[i + 1]!)) picked.push(lines[++i]!);
  }
  // (the closing paragraphs: from the first line after the command list)
  const tail = USAGE.split('\n\n').pop()!;
  return `usage: orbital-lab [--lab FILE] [--json] ${cmd} ...\n\n${picked.join('\n')}\n\n${tail}`;
}

export async function main(argv: string[], io?: Partial<Io>): Promise<number> {
  const json = argv.includes('--json');
  const out = io?.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const err = io?.err ?? ((s: string) => process.stderr.write(s + '\n'));
  const rest = argv.filter((a) => a !== '--json');
  let labOpt: string | undefined;
  const li = rest.findIndex((a) => a === '--lab' || a.startsWith('--lab='));
  if (li >= 0) {
    if (rest[li]!.startsWith('--lab=')) { labOpt = rest[li]!.slice(6); rest.splice(li, 1); } else { labOpt = rest[li + 1]; rest.splice(li, 2); }
  }
  const cmd = rest[0];
  const ac = new AbortController();
  let interrupts = 0;
  const onSig = () => { interrupts++; if (interrupts > 1) process.exit(EXIT.lab); ac.abort(); };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  // Past a file-size limit a write should fail with EFBIG (reported as a full target), not kill us.
  process.on('SIGXFSZ', () => {});
  try {
    if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { out(USAGE); return cmd ? EXIT.ok : EXIT.usage; }
    const h = commands[cmd];
    if (!h) throw new LabError('bad-input', 'bad-usage', `unknown command "${cmd}"\n\n${USAGE}`);
    const ddash = rest.indexOf('--');
    if (rest.slice(1, ddash < 0 ? undefined : ddash).some((a) => a === '--help' || a === '-h')) { out(usageOf(cmd)); return EXIT.ok; }
    let cached: Lab | undefined;
    const lab = () => (cached ??= loadLab(labPath(labOpt)));
    let r: Awaited<ReturnType<Handler>>;
    try {
      r = await h(rest.slice(1), { lab, labFile: labPath(labOpt), io: { json, out, err }, signal: ac.signal, json });
    } catch (e) {
      if (cached && e instanceof LabError) {
        const off = await record(cached, labRecordsOf(cmd, rest.slice(1), cached, null, e), err);
        if (off.length) (e.detail as Record<string, unknown>).outOfService = off;
      }
      throw e;
    }
    if (cached) {
      const off = await record(cached, labRecordsOf(cmd, rest.slice(1), cached, r.result, null), err);
      if (off.length && r.result && typeof r.result === 'object') r.result = { ...r.result, outOfService: off };
    }
    if (json) out(JSON.stringify(r.result)); else out(r.text);
    return r.exit ?? EXIT.ok;
  } catch (e) {
    let le: LabError;
    if (e instanceof LabError) le = e;
    else if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) le = new LabError('bad-input', 'bad-usage', `${(e as Error).message}\n\n${USAGE}`);
    else le = new LabError('bug', 'bug', `internal error: ${(e as Error)?.stack ?? e}`, 'lab');
    if (json) out(JSON.stringify({ ok: false, error: le.toJSON() }));
    err(`orbital-lab: ${le.message}`);
    return exitCodeFor(le);
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]).replace(/\.ts$/, '') === resolve(new URL(import.meta.url).pathname).replace(/\.ts$/, '');
if (isMain) process.exit(await main(process.argv.slice(2)));
