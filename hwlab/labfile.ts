// The lab file: a YAML inventory of devices (docs/lab.md). Parsing never throws on content: every
// mistake comes back as an issue naming the file, line, column and the dotted field path, and all
// mistakes are reported at once so a person fixes the file in one go.
import { dirname, isAbsolute, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YNode, type Pair, type YAMLMap } from 'yaml';
import { LabError } from './errors.ts';
import { readTrustedKey } from './flash/orbimg.ts';

export type DeviceKind = 'qemu' | 'serial-board';
export type PowerKind = 'qemu' | 'command' | 'manual';

export interface ConsoleSpec {
  /** serial-board: a path (/dev/ttyUSB0, /dev/serial/by-id/..., a pty). */
  port?: string;
  /** serial-board: a name under /dev/serial/by-id/ - survives USB re-enumeration. */
  byId?: string;
  /** serial-board: a USB serial number, matched among the ports serialport lists. */
  usbSerial?: string;
  /**
   * serial-board: where the adapter is plugged in - Linux's USB bus-port path (`1-5.2`, or an
   * interface of it, `1-4:1.2`): for adapters with no serial number of their own (CH340, PL2303
   * clones), which by-id cannot tell apart. Found again after re-enumeration, lost if the adapter
   * moves to another socket.
   */
  usbPath?: string;
  baud: number;
  /** qemu: which guest device carries the console. */
  chardev: 'serial' | 'virtio';
  /** Pause between typed characters of a scripted command (`run`), in ms: 0 = the line at once. */
  charDelayMs: number;
  /** `run` types Ctrl-U (the line-kill character) before each command, dropping whatever is on the device's input line. */
  lineKill: boolean;
}

export interface QemuSpec {
  binary: string;
  /** A multiboot kernel to boot directly with -kernel, or undefined to boot the flash target disk. */
  kernel?: string;
  memory: number;
  args: string[];
}

export interface PowerSpec { kind: PowerKind; on?: string; off?: string; cycle?: string }

export interface Pattern { name: string; regex: RegExp; source: string }

export interface BootSpec {
  milestones: Pattern[];
  success: Pattern[];
  fatal: Pattern[];
  reset: Pattern[];
}

/** Where the device speaks kernel-link: on its console port (boards), QEMU's virtio-console, or a unix socket (the hosted OS). */
export type LinkSpec = { on: 'console' } | { on: 'virtio' } | { on: 'socket'; path: string } | { on: 'none' };

export interface Timeouts {
  boot: number; power: number;
  /** A whole flash (compare, write, verify). */
  flash: number;
  console: number;
  /** One operation on a flash target (a write, read, sync) that has not completed: the device hung. */
  flashStall: number;
}

export interface Device {
  name: string;
  kind: DeviceKind;
  tags: string[];
  console: ConsoleSpec;
  qemu?: QemuSpec;
  power: PowerSpec;
  link: LinkSpec;
  /** Absolute path of the flash target (a file, or a block device, preferably /dev/disk/by-id/...). */
  flashTarget?: string;
  boot: BootSpec;
  /** Milliseconds. */
  timeouts: Timeouts;
  /**
   * `health.max-lab-failures`: lab-side failures in a row that take the device out of service (0:
   * never). `health.check`: commands a health check types after its boot, each with the patterns
   * its answer must show (LAVA's health-check job); none: the check is the boot alone.
   */
  health: { maxLabFailures: number; check: Array<{ cmd: string; expect: Pattern[] }> };
  /** Where the device is defined, for messages. */
  line: number;
}

export interface Lab {
  path: string;
  dir: string;
  /** Locks, boot logs and flash journals live here. */
  stateDir: string;
  devices: Map<string, Device>;
  /** Keys a signed Orbital image (.orbimg) may be signed with (`trust:`); `flash --trust` adds more. */
  trust: TrustedKey[];
}

/** A raw Ed25519 public key and where the lab file names it. */
export interface TrustedKey { key: Uint8Array; from: string; line: number }

export interface LabIssue { line: number; col: number; field: string; message: string }

export type LabResult = { ok: true; lab: Lab } | { ok: false; issues: LabIssue[] };

export const DEFAULT_FATAL: Array<[string, string]> = [
  ['panic', '(?:Kernel panic|\\bpanic(?:ked)?\\b)'],
  ['crash-report', '(?:CRASH REPORT|^CRASH\\b)'],
  ['oops', '\\bOops\\b'],
];
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function formatIssue(path: string, i: LabIssue): string {
  return `${path}:${i.line}:${i.col}: ${i.field ? i.field + ': ' : ''}${i.message}`;
}

/** Reads and validates a lab file; a missing or bad file is a `bad-input` LabError listing every issue. */
export function loadLab(path: string): Lab {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) {
    throw new LabError('bad-input', 'bad-lab-file', `cannot read lab file ${path}: ${(e as Error).message} (give one with --lab FILE or ORBITAL_LAB)`);
  }
  const r = parseLab(text, resolve(path));
  if (!r.ok) {
    throw new LabError('bad-input', 'bad-lab-file', `lab file has ${r.issues.length} problem(s):\n` + r.issues.map((i) => '  ' + formatIssue(path, i)).join('\n'), 'usage', { issues: r.issues });
  }
  return r.lab;
}

/** Parses lab file text. `path` anchors relative paths. Never throws. */
export function parseLab(text: string, path: string): LabResult {
  const issues: LabIssue[] = [];
  try {
    return parseInner(text, path, issues);
  } catch (e) {
    // A validator bug must not crash the caller; report it as an issue with what we know.
    issues.push({ line: 1, col: 1, field: '', message: `internal error while validating: ${(e as Error).message}` });
    return { ok: false, issues };
  }
}

function parseInner(text: string, path: string, issues: LabIssue[]): LabResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true });
  const at = (offset: number | undefined) => {
    const p = lc.linePos(offset ?? 0);
    return { line: p.line, col: p.col };
  };
  for (const e of doc.errors) {
    const field = e.code === 'DUPLICATE_KEY' ? '(duplicate key)' : '';
    issues.push({ ...at(e.pos[0]), field, message: `YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
  }
  if (issues.length) return { ok: false, issues };
  const dir = dirname(path);
  const v = new V(issues, at);
  const root = doc.contents as YNode | null;
  if (!root || !isMap(root)) {
    v.fail(root, '', 'the lab file must be a mapping with `version: 1` and `devices:`');
    return { ok: false, issues };
  }
  const top = v.keys(root, '', ['version', 'state', 'trust', 'devices']);
  const version = v.int(top.get('version'), 'version', { min: 1, max: 1, required: true, node: root });
  void version;
  const stateRel = v.str(top.get('state'), 'state') ?? '.orbital/lab';
  const stateDir = isAbsolute(stateRel) ? stateRel : resolve(dir, stateRel);
  // trust: KEY.pub files (relative to this file) or 64 hex digits; each is read and checked now.
  const trust: TrustedKey[] = [];
  const trustNode = top.get('trust');
  if (trustNode !== undefined && !isSeq(trustNode)) v.fail(trustNode, 'trust', 'must be a list of public key files (KEY.pub) or 64-hex-digit keys');
  else if (trustNode !== undefined) {
    (trustNode.items as YNode[]).forEach((item, i) => {
      const spec = v.str(item, `trust[${i}]`);
      if (spec === undefined) return;
      const r = readTrustedKey(spec, dir);
      if ('error' in r) v.fail(item, `trust[${i}]`, r.error);
      else trust.push({ key: r.key, from: spec, line: v.lineOf(item) });
    });
  }
  const devicesNode = top.get('devices');
  const devices = new Map<string, Device>();
  if (!devicesNode) v.fail(root, 'devices', 'required: a mapping of device name to device');
  else if (!isMap(devicesNode)) v.fail(devicesNode, 'devices', 'must be a mapping of device name to device');
  else {
    for (const pair of devicesNode.items as Pair<YNode, YNode>[]) {
      const name = isScalar(pair.key) ? String(pair.key.value) : '';
      const f = `devices.${name}`;
      if (!NAME_RE.test(name)) { v.fail(pair.key, f, 'device names are lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (max 64)'); continue; }
      const d = device(v, pair.value ?? undefined, f, name, dir, pair.key);
      if (d) devices.set(name, d);
    }
  }
  // Two devices must not share a flash target or a console: one device's flash would clobber the other.
  const seenTarget = new Map<string, string>();
  const seenPort = new Map<string, string>();
  for (const d of devices.values()) {
    if (d.flashTarget) {
      const o = seenTarget.get(d.flashTarget);
      if (o) issues.push({ line: d.line, col: 1, field: `devices.${d.name}.flash.target`, message: `same target as device ${o}` });
      seenTarget.set(d.flashTarget, d.name);
    }
    const port = d.console.port ?? d.console.byId ?? d.console.usbSerial;
    if (port) {
      const o = seenPort.get(port);
      if (o) issues.push({ line: d.line, col: 1, field: `devices.${d.name}.console`, message: `same console as device ${o}` });
      seenPort.set(port, d.name);
    }
  }
  if (issues.length) return { ok: false, issues: issues.sort((a, b) => a.line - b.line || a.col - b.col) };
  return { ok: true, lab: { path, dir, stateDir, devices, trust } };
}

function device(v: V, node: YNode | undefined, f: string, name: string, dir: string, keyNode: unknown): Device | undefined {
  if (!node || !isMap(node)) { v.fail(node ?? keyNode, f, 'must be a mapping (kind, console, power, flash, boot, timeouts, health, tags)'); return undefined; }
  const k = v.keys(node, f, ['kind', 'tags', 'console', 'qemu', 'power', 'flash', 'boot', 'timeouts', 'health', 'description', 'link']);
  const kindOk = v.oneOf(k.get('kind'), `${f}.kind`, ['qemu', 'serial-board'] as const, { required: true, node });
  // With a bad kind, check the rest as a serial board (the stricter console rules) but keep no device.
  const kind = kindOk ?? 'serial-board';
  const tags = v.strList(k.get('tags'), `${f}.tags`) ?? [];
  for (const t of tags) if (!NAME_RE.test(t)) v.fail(k.get('tags'), `${f}.tags`, `tag "${t}" must be lower-case letters, digits, ".", "_" or "-"`);
  v.str(k.get('description'), `${f}.description`);
  const p = (s: string | undefined) => (s === undefined ? undefined : isAbsolute(s) ? s : resolve(dir, s));

  // console
  const cn = k.get('console');
  const cons: ConsoleSpec = { baud: 115200, chardev: 'serial', charDelayMs: 0, lineKill: false };
  if (cn !== undefined) {
    if (!isMap(cn)) v.fail(cn, `${f}.console`, 'must be a mapping');
    else {
      const c = v.keys(cn, `${f}.console`, kind === 'qemu' ? ['chardev', 'char-delay', 'line-kill'] : ['port', 'by-id', 'usb-serial', 'usb-path', 'baud', 'char-delay', 'line-kill']);
      cons.charDelayMs = v.duration(c.get('char-delay'), `${f}.console.char-delay`) ?? 0;
      cons.lineKill = v.bool(c.get('line-kill'), `${f}.console.line-kill`) ?? false;
      if (kind === 'qemu') {
        cons.chardev = v.oneOf(c.get('chardev'), `${f}.console.chardev`, ['serial', 'virtio'] as const) ?? 'serial';
      } else {
        cons.port = p(v.str(c.get('port'), `${f}.console.port`));
        const byId = v.str(c.get('by-id'), `${f}.console.by-id`);
        if (byId !== undefined) cons.byId = byId.startsWith('/') ? byId : `/dev/serial/by-id/${byId}`;
        cons.usbSerial = v.str(c.get('usb-serial'), `${f}.console.usb-serial`);
        const usbPath = v.str(c.get('usb-path'), `${f}.console.usb-path`);
        if (usbPath !== undefined && !USB_PATH.test(usbPath)) v.fail(c.get('usb-path'), `${f}.console.usb-path`, `"${usbPath}" is not a USB bus-port path: it looks like 1-5.2 (bus 1, hub port 5, its port 2), or 1-4:1.2 for one interface of a multi-port adapter; orbital-lab scan shows each port's`);
        else cons.usbPath = usbPath;
        cons.baud = v.int(c.get('baud'), `${f}.console.baud`, { min: 50, max: 12_000_000 }) ?? 115200;
        const n = [cons.port, cons.byId, cons.usbSerial, usbPath].filter((x) => x !== undefined).length;
        if (n !== 1) v.fail(cn, `${f}.console`, `give exactly one of port, by-id, usb-serial or usb-path (got ${n})`);
      }
    }
  } else if (kindOk === 'serial-board' && !isMap(k.get('link'))) v.fail(node, `${f}.console`, 'required for a serial-board (unless its link is a socket): port, by-id, usb-serial or usb-path, and baud');

  // qemu
  const qn = k.get('qemu');
  let qemu: QemuSpec | undefined;
  if (kind === 'qemu') {
    qemu = { binary: 'qemu-system-x86_64', memory: 128, args: [] };
    if (qn !== undefined) {
      if (!isMap(qn)) v.fail(qn, `${f}.qemu`, 'must be a mapping (binary, kernel, memory, args)');
      else {
        const q = v.keys(qn, `${f}.qemu`, ['binary', 'kernel', 'memory', 'args']);
        qemu.binary = v.str(q.get('binary'), `${f}.qemu.binary`) ?? qemu.binary;
        qemu.kernel = p(v.str(q.get('kernel'), `${f}.qemu.kernel`));
        qemu.memory = v.int(q.get('memory'), `${f}.qemu.memory`, { min: 16, max: 65536 }) ?? 128;
        qemu.args = v.strList(q.get('args'), `${f}.qemu.args`) ?? [];
      }
    }
  } else if (qn !== undefined && kindOk) v.fail(qn, `${f}.qemu`, 'only a qemu device has a qemu section');

  // power
  const pn = k.get('power');
  const power: PowerSpec = { kind: kind === 'qemu' ? 'qemu' : 'manual' };
  if (pn !== undefined) {
    if (!isMap(pn)) v.fail(pn, `${f}.power`, 'must be a mapping with kind: qemu | command | manual');
    else {
      const pw = v.keys(pn, `${f}.power`, ['kind', 'on', 'off', 'cycle']);
      power.kind = v.oneOf(pw.get('kind'), `${f}.power.kind`, ['qemu', 'command', 'manual'] as const, { required: true, node: pn }) ?? power.kind;
      if (power.kind === 'qemu' && kindOk === 'serial-board') v.fail(pw.get('kind'), `${f}.power.kind`, 'power kind qemu needs a qemu device; use command or manual');
      for (const which of ['on', 'off', 'cycle'] as const) {
        const s = v.str(pw.get(which), `${f}.power.${which}`);
        if (s !== undefined && power.kind !== 'command') v.fail(pw.get(which), `${f}.power.${which}`, 'commands only apply to power kind command');
        power[which] = s;
      }
      if (power.kind === 'command' && (!power.on || !power.off)) v.fail(pn, `${f}.power`, 'power kind command needs at least on and off commands');
    }
  }

  // flash
  const fn = k.get('flash');
  let flashTarget: string | undefined;
  if (fn !== undefined) {
    if (!isMap(fn)) v.fail(fn, `${f}.flash`, 'must be a mapping with target: PATH');
    else {
      const fl = v.keys(fn, `${f}.flash`, ['target']);
      const t = v.str(fl.get('target'), `${f}.flash.target`, { required: true, node: fn });
      if (t !== undefined) {
        if (t === 'none') flashTarget = undefined;
        else {
          flashTarget = p(t);
          if (/^\/dev\/(sd[a-z]+|nvme\d+n\d+|mmcblk\d+|vd[a-z]+|hd[a-z]+)$/.test(t)) {
            v.fail(fl.get('target'), `${f}.flash.target`, `${t} can change name between boots; name the disk by /dev/disk/by-id/... instead`);
          }
        }
      }
    }
  }

  // boot patterns
  const bn = k.get('boot');
  const boot: BootSpec = { milestones: [], success: [], fatal: DEFAULT_FATAL.map(([n, s]) => ({ name: n, source: s, regex: new RegExp(s) })), reset: [] };
  if (bn !== undefined) {
    if (!isMap(bn)) v.fail(bn, `${f}.boot`, 'must be a mapping (milestones, success, fatal, reset)');
    else {
      const b = v.keys(bn, `${f}.boot`, ['milestones', 'success', 'fatal', 'reset']);
      boot.milestones = v.patterns(b.get('milestones'), `${f}.boot.milestones`, 'stage') ?? [];
      boot.success = v.patterns(b.get('success'), `${f}.boot.success`, 'success') ?? [];
      const fatal = v.patterns(b.get('fatal'), `${f}.boot.fatal`, 'fatal');
      if (fatal) boot.fatal = fatal;
      boot.reset = v.patterns(b.get('reset'), `${f}.boot.reset`, 'reset') ?? [];
    }
  }

  // timeouts
  const tn = k.get('timeouts');
  const timeouts: Timeouts = { boot: 60_000, power: 10_000, flash: 30 * 60_000, console: 5_000, flashStall: 60_000 };
  if (tn !== undefined) {
    if (!isMap(tn)) v.fail(tn, `${f}.timeouts`, 'must be a mapping (boot, power, flash, flash-stall, console) of durations like 30s, 2m, 500ms');
    else {
      const t = v.keys(tn, `${f}.timeouts`, ['boot', 'power', 'flash', 'flash-stall', 'console']);
      for (const key of ['boot', 'power', 'flash', 'console'] as const) timeouts[key] = v.duration(t.get(key), `${f}.timeouts.${key}`) ?? timeouts[key];
      timeouts.flashStall = v.duration(t.get('flash-stall'), `${f}.timeouts.flash-stall`) ?? timeouts.flashStall;
    }
  }
  // health: { max-lab-failures: N, check: [ { run: CMD, expect: RE | [RE...] } ... ] }
  const hn = k.get('health');
  const health: Device['health'] = { maxLabFailures: 3, check: [] };
  if (hn !== undefined) {
    if (!isMap(hn)) v.fail(hn, `${f}.health`, 'must be a mapping: { max-lab-failures: N, check: [...] } (lab-side failures in a row that take the device out of service; 0: never)');
    else {
      const h = v.keys(hn, `${f}.health`, ['max-lab-failures', 'check']);
      health.maxLabFailures = v.int(h.get('max-lab-failures'), `${f}.health.max-lab-failures`, { min: 0, max: 1000 }) ?? health.maxLabFailures;
      const cn = h.get('check');
      if (cn !== undefined) {
        if (!isSeq(cn)) v.fail(cn, `${f}.health.check`, 'must be a list of commands: - { run: "echo ok", expect: "^ok$" }');
        else (cn.items as YNode[]).forEach((it, i) => {
          const cf = `${f}.health.check[${i}]`;
          if (!isMap(it)) { v.fail(it, cf, 'must be a mapping: { run: CMD, expect: RE or [RE, ...] }'); return; }
          const c = v.keys(it, cf, ['run', 'expect']);
          const cmd = v.str(c.get('run'), `${cf}.run`, { required: true, node: it });
          if (cmd !== undefined && (cmd.trim() === '' || /[\r\n]/.test(cmd))) { v.fail(c.get('run'), `${cf}.run`, 'one command line: not empty, no newlines'); return; }
          const expect = v.patterns(c.get('expect'), `${cf}.expect`, 'expect') ?? [];
          if (cmd !== undefined) health.check.push({ cmd, expect });
        });
      }
    }
  }
  // link: console | virtio | none | { socket: PATH }
  const ln = k.get('link');
  let link: LinkSpec = kind === 'qemu' ? { on: 'virtio' } : { on: 'console' };
  if (ln !== undefined) {
    if (isMap(ln)) {
      const l = v.keys(ln, `${f}.link`, ['socket']);
      const sp = v.str(l.get('socket'), `${f}.link.socket`, { required: true, node: ln });
      if (sp) link = { on: 'socket', path: p(sp)! };
    } else {
      const on = v.oneOf(ln, `${f}.link`, ['console', 'virtio', 'none'] as const);
      if (on === 'virtio' && kindOk === 'serial-board') v.fail(ln, `${f}.link`, 'virtio is a QEMU device; a board speaks the link on its console (or give { socket: PATH })');
      if (on) link = { on } as LinkSpec;
    }
  }
  const line = v.lineOf(keyNode);
  if (!kindOk) return undefined;
  return { name, kind, tags, console: cons, qemu, power, link, flashTarget, boot, timeouts, health, line };
}

/** Parses a duration: a number of seconds, or "500ms", "30s", "2m", "1h". Returns ms or undefined. */
export function parseDuration(s: string | number): number | undefined {
  if (typeof s === 'number') return Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(n * mult);
  return ms > 0 ? ms : undefined;
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!; d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length]!;
}

/**
 * What other lab tools (labgrid, LAVA, twister, picocom) and people call a field, and its name
 * here: an unknown field that is one of these gets the name to use, not a list (only where the
 * name is a field of that place: `path` is a console's `port`, but not elsewhere).
 */
const SAME_AS: Record<string, string[]> = {
  path: ['port', 'target'], device: ['port', 'target'], tty: ['port'], serial: ['usb-serial', 'console'], 'serial-number': ['usb-serial'], 'usb-serial-number': ['usb-serial'], serialno: ['usb-serial'], byid: ['by-id'], 'by_id': ['by-id'],
  speed: ['baud'], baudrate: ['baud'], 'baud-rate': ['baud'], 'baud_rate': ['baud'], bps: ['baud'],
  disk: ['target'], image: ['target'], drive: ['target'], 'block-device': ['target'],
  type: ['kind'], class: ['kind'], driver: ['kind'],
  labels: ['tags'], tag: ['tags'], features: ['tags'],
  'power-on': ['on'], 'power-off': ['off'], reset: ['cycle', 'reset'], 'power-cycle': ['cycle'],
  patterns: ['milestones'], 'success-pattern': ['success'], 'fail': ['fatal'], failure: ['fatal'], panic: ['fatal'],
};

/** A USB bus-port path as sysfs names it: bus-port[.port]..., optionally :config.interface. */
const USB_PATH = /^\d+-\d+(\.\d+)*(:\d+\.\d+)?$/;

/** The validator's helpers: each records an issue at the node's position and returns undefined on a bad value. */
class V {
  constructor(private issues: LabIssue[], private at: (o: number | undefined) => { line: number; col: number }) {}
  lineOf(node: unknown): number { return this.at(rangeOf(node)).line; }
  fail(node: unknown, field: string, message: string): void {
    this.issues.push({ ...this.at(rangeOf(node)), field, message });
  }
  keys(m: YAMLMap, field: string, allowed: string[]): Map<string, YNode | undefined> {
    const out = new Map<string, YNode | undefined>();
    for (const pair of m.items as Pair<YNode, YNode>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      const f = field ? `${field}.${key}` : String(key);
      if (key === undefined) { this.fail(pair.key, field, 'keys must be plain names'); continue; }
      if (!allowed.includes(key)) {
        const near = allowed.map((a) => [a, levenshtein(a, key)] as const).sort((x, y) => x[1] - y[1])[0];
        const same = SAME_AS[key.toLowerCase()]?.find((a) => allowed.includes(a));
        const hint = near && near[1] <= 2 ? ` - did you mean "${near[0]}"?` : same ? ` - this lab file calls it "${same}"` : ` (known: ${allowed.join(', ')})`;
        this.fail(pair.key, f, `unknown field${hint}`);
        continue;
      }
      // A key with no value (`console:`) is null: report it as missing content rather than ignore it.
      out.set(key, pair.value ?? (pair.key as YNode));
      if (pair.value == null || (isScalar(pair.value) && pair.value.value === null)) {
        this.fail(pair.key, f, 'has no value');
        out.set(key, undefined);
      }
    }
    return out;
  }
  str(node: YNode | undefined, field: string, o: { required?: boolean; node?: unknown } = {}): string | undefined {
    if (node === undefined) { if (o.required) this.fail(o.node, field, 'required'); return undefined; }
    if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) { this.fail(node, field, 'must be a string'); return undefined; }
    const s = String(node.value);
    if (s.length === 0) { this.fail(node, field, 'must not be empty'); return undefined; }
    return s;
  }
  bool(node: YNode | undefined, field: string): boolean | undefined {
    if (node === undefined) return undefined;
    const val = isScalar(node) ? node.value : undefined;
    if (typeof val !== 'boolean') { this.fail(node, field, `must be true or false${isScalar(node) ? ` (got ${JSON.stringify(node.value)})` : ''}`); return undefined; }
    return val;
  }
  int(node: YNode | undefined, field: string, o: { min: number; max: number; required?: boolean; node?: unknown }): number | undefined {
    if (node === undefined) { if (o.required) this.fail(o.node, field, 'required'); return undefined; }
    const val = isScalar(node) ? node.value : undefined;
    if (typeof val !== 'number' || !Number.isInteger(val)) { this.fail(node, field, `must be an integer${isScalar(node) ? ` (got ${JSON.stringify(node.value)})` : ''}`); return undefined; }
    if (val < o.min || val > o.max) { this.fail(node, field, o.min === o.max ? `must be ${o.min} (got ${val})` : `must be between ${o.min} and ${o.max} (got ${val})`); return undefined; }
    return val;
  }
  oneOf<T extends string>(node: YNode | undefined, field: string, values: readonly T[], o: { required?: boolean; node?: unknown } = {}): T | undefined {
    const s = this.str(node, field, o);
    if (s === undefined) return undefined;
    if (!values.includes(s as T)) { this.fail(node, field, `must be one of ${values.join(' | ')} (got "${s}")`); return undefined; }
    return s as T;
  }
  strList(node: YNode | undefined, field: string): string[] | undefined {
    if (node === undefined) return undefined;
    if (!isSeq(node)) { this.fail(node, field, 'must be a list of strings'); return undefined; }
    const out: string[] = [];
    node.items.forEach((it, i) => { const s = this.str(it as YNode, `${field}[${i}]`); if (s !== undefined) out.push(s); });
    return out;
  }
  duration(node: YNode | undefined, field: string): number | undefined {
    if (node === undefined) return undefined;
    const val = isScalar(node) ? node.value : undefined;
    const ms = typeof val === 'string' || typeof val === 'number' ? parseDuration(val) : undefined;
    if (ms === undefined) { this.fail(node, field, `must be a duration like 500ms, 30s, 2m or 1h${isScalar(node) ? ` (got ${JSON.stringify(node.value)})` : ''}`); return undefined; }
    return ms;
  }
  /** A pattern list: a string, a list of strings, or a list of {name, pattern} (milestones are named stages). */
  patterns(node: YNode | undefined, field: string, defaultName: string): Pattern[] | undefined {
    if (node === undefined) return undefined;
    const items: YNode[] = isSeq(node) ? (node.items as YNode[]) : [node];
    const out: Pattern[] = [];
    items.forEach((it, i) => {
      const f = isSeq(node) ? `${field}[${i}]` : field;
      let name = items.length > 1 || defaultName === 'stage' ? `${defaultName}-${i + 1}` : defaultName;
      let src: string | undefined;
      let srcNode: YNode | undefined = it;
      if (isMap(it)) {
        const m = this.keys(it, f, ['name', 'pattern']);
        name = this.str(m.get('name'), `${f}.name`) ?? name;
        srcNode = m.get('pattern');
        src = this.str(srcNode, `${f}.pattern`, { required: true, node: it });
      } else src = this.str(it, f);
      if (src === undefined) return;
      try { out.push({ name, source: src, regex: new RegExp(src) }); } catch (e) {
        this.fail(srcNode, f, `not a valid regular expression: ${(e as Error).message}`);
      }
    });
    return out;
  }
}

function rangeOf(node: unknown): number | undefined {
  const r = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return r ? r[0] : undefined;
}

/** Finds a device by name, or a `bad-input` error that lists the known ones. */
export function getDevice(lab: Lab, name: string): Device {
  const d = lab.devices.get(name);
  if (!d) {
    const known = [...lab.devices.keys()];
    throw new LabError('bad-input', 'unknown-device', `no device "${name}" in ${lab.path} (known: ${known.join(', ') || 'none'})`);
  }
  return d;
}
