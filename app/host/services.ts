// The host services behind the bridge: the devices this host is connected to, each with the log
// the host holds for it (checked link by link), the console text, and the proposals the session
// sends. One instance serves every renderer (web sockets and Electron windows alike).
import { decodeEntry, entryHash, equalBytes, decodeValue, isMap, toHex, Kind, DOMAIN_NAMES, type Value, type ValueMap } from '../../axiom/index.ts';
import { fromBase64, toBase64, type DeviceInfo, type DeviceTarget, type EventChannel, type Events, type HostCapabilities, type Json, type ProposeResult } from '../../renderer/bridge.ts';
import type { DeviceLink } from './device.ts';
import { HostError, type EventSource, type Handlers } from './dispatch.ts';

/** The actor the graphical session proposes as (docs/os-domain.md: actor 1 is the session). */
export const SESSION_ACTOR = 1;
/** Console text kept per device for windows opened later. */
export const CONSOLE_KEPT = 64 * 1024;
/** Rough cap on the entry bytes in one device.log reply (the page asks again for the rest). */
export const LOG_REPLY_BYTES = 4 * 1024 * 1024;

/** JSON from the bridge → an Axiom value. `{"$bytes": base64}` is bytes. */
export function jsonToValue(j: Json): Value {
  if (j === null || typeof j === 'boolean' || typeof j === 'string' || typeof j === 'number') return j;
  if (Array.isArray(j)) return j.map(jsonToValue);
  const ks = Object.keys(j);
  if (ks.length === 1 && ks[0] === '$bytes' && typeof j.$bytes === 'string') {
    const b = fromBase64(j.$bytes);
    if (!b) throw new HostError('bad-input', '$bytes is not base64');
    return b;
  }
  const m: ValueMap = {};
  for (const k of ks) m[k] = jsonToValue(j[k]!);
  return m;
}

class DeviceState {
  log: Uint8Array[] = [];
  head: Uint8Array = new Uint8Array(32);
  info: DeviceInfo;
  maxId = 0;
  console = '';
  constructor(id: string, readonly link: DeviceLink) {
    this.info = { id, label: link.label, target: link.target, link: 'connecting', deviceId: '', bootId: '', seq: -1, stateHashes: {}, lastCheckpoint: -1 };
  }
}

type Listener = <C extends EventChannel>(ch: C, data: Events[C]) => void;

export interface HostServicesOptions {
  /** Makes the link for a target; the host calls it on `device.connect`. */
  links: Partial<Record<DeviceTarget, (path?: string) => DeviceLink | Promise<DeviceLink>>>;
  capabilities: () => HostCapabilities | Promise<HostCapabilities>;
  mode: 'web' | 'electron';
  log?: (line: string) => void;
}

export class HostServices implements EventSource {
  private devices = new Map<string, DeviceState>();
  private listeners = new Set<Listener>();
  private nextDevice = 1;
  private readonly log: (l: string) => void;
  constructor(private o: HostServicesOptions) { this.log = o.log ?? ((l) => console.warn(l)); }

  subscribe(fn: Listener): () => void { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  private emit<C extends EventChannel>(ch: C, data: Events[C]) { for (const l of this.listeners) l(ch, data); }

  /** Connects a device and returns its id once the link is up. */
  async connect(target: DeviceTarget, path?: string): Promise<DeviceInfo> {
    const make = this.o.links[target];
    if (!make) throw new HostError('bad-input', target === 'qemu' ? ((await this.o.capabilities()).qemuWhyNot ?? 'QEMU is not available on this host') : `this host cannot connect to a ${target} device`);
    const d = new DeviceState(`dev${this.nextDevice++}`, await make(path));
    this.devices.set(d.info.id, d);
    const status = () => this.emit('device.status', { ...d.info });
    await d.link.start({
      entries: (first, list) => this.take(d, first, list),
      console: (text) => {
        d.console = (d.console + text).slice(-CONSOLE_KEPT);
        this.emit('device.console', { device: d.info.id, text });
      },
      link: (state, error) => { d.info.link = state; if (error) d.info.error = error; else delete d.info.error; status(); },
    }, 0);
    return { ...d.info };
  }

  private take(d: DeviceState, first: number, list: Uint8Array[]) {
    const fresh: Uint8Array[] = [];
    for (let i = 0; i < list.length; i++) {
      const seq = first + i;
      if (seq < d.log.length) continue; // already held
      if (seq > d.log.length) { this.log(`host: ${d.info.id}: entries jump from ${d.log.length} to ${seq}; waiting for the link to resend`); return; }
      const b = list[i]!;
      const e = decodeEntry(b);
      if (!e.ok || e.value.seq !== seq || !equalBytes(e.value.prev, d.head)) { this.log(`host: ${d.info.id}: entry ${seq} does not extend the chain; dropped`); return; }
      d.log.push(b);
      d.head = entryHash(b);
      fresh.push(b);
      this.note(d, e.value.kind, e.value.actor, e.value.seq, e.value.payload);
    }
    if (!fresh.length) return;
    d.info.seq = d.log.length - 1;
    this.emit('device.entries', { device: d.info.id, entries: fresh.map(toBase64) });
    this.emit('device.status', { ...d.info });
  }

  private note(d: DeviceState, kind: number, actor: number, seq: number, payload: Uint8Array) {
    const v = decodeValue(payload);
    if (!v.ok || !isMap(v.value)) return;
    const p = v.value;
    if (kind === Kind.Boot) {
      if (p.device instanceof Uint8Array) d.info.deviceId = toHex(p.device);
      if (p.boot instanceof Uint8Array) d.info.bootId = toHex(p.boot);
    } else if (kind === Kind.Checkpoint) {
      d.info.lastCheckpoint = seq;
      if (isMap(p.states)) for (const [k, h] of Object.entries(p.states)) if (h instanceof Uint8Array) d.info.stateHashes[k] = toHex(h);
    } else if ((kind === Kind.Commit || kind === Kind.Reject) && actor === SESSION_ACTOR && typeof p.id === 'number') {
      d.maxId = Math.max(d.maxId, p.id);
    }
  }

  private get(device: string): DeviceState {
    const d = this.devices.get(device);
    if (!d) throw new HostError('bad-input', `no device ${device}; connect one first`);
    return d;
  }

  list(): DeviceInfo[] { return [...this.devices.values()].map((d) => ({ ...d.info })); }

  /** Encoded entries the host holds for a device (tests and the determinism check read these). */
  logOf(device: string): Uint8Array[] { return [...this.get(device).log]; }

  async propose(device: string, domain: number, action: string, args: Json): Promise<ProposeResult> {
    const d = this.get(device);
    if (d.info.link !== 'up') throw new HostError('disconnected', `${d.info.label} is ${d.info.link}; reconnect it from the Devices window`);
    if (!DOMAIN_NAMES[domain]) throw new HostError('bad-input', `unknown domain ${domain}`);
    const value = jsonToValue(args);
    if (!isMap(value)) throw new HostError('bad-input', 'args must be a map');
    // Ids stay unique across host restarts: the device remembers every (actor, id) it decided.
    const id = ++d.maxId;
    return d.link.propose({ actor: SESSION_ACTOR, id, domain, action, args: value, time: 0 });
  }

  handlers(): Handlers {
    return {
      hello: async () => ({ version: 1, mode: this.o.mode, devices: this.list(), capabilities: await this.o.capabilities() }),
      'device.connect': (a) => this.connect(a.target, a.path),
      'device.propose': (a) => this.propose(a.device, a.domain, a.action, a.args),
      'device.log': async (a) => {
        // At most `count` entries and about LOG_REPLY_BYTES of them (entries can be 1 MiB each); at least one.
        const log = this.get(a.device).log, out: string[] = [];
        let bytes = 0;
        for (let i = a.from; i < log.length && out.length < a.count && (out.length === 0 || bytes < LOG_REPLY_BYTES); i++) { bytes += log[i]!.length; out.push(toBase64(log[i]!)); }
        return { entries: out };
      },
      'device.info': async (a) => ({ ...this.get(a.device).info }),
      'device.console': async (a) => ({ text: this.get(a.device).console }),
    };
  }

  async close(): Promise<void> {
    for (const d of this.devices.values()) await d.link.close().catch((e) => this.log(`host: closing ${d.info.id}: ${e}`));
    this.devices.clear();
  }
}
