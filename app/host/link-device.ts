// A device reached through kernel-link (the hosted OS on a socket, the QEMU guest, a serial
// board): the link client streams the log from seq 0 with chain checks, console lines, and
// carries proposals; reconnects and resumes are the client's job.
import { createClient, type Target } from '../../kernel-link/node/client.ts';
import type { LinkClient } from '../../kernel-link/core/client.ts';
import type { Proposal } from '../../axiom/index.ts';
import type { DeviceTarget, ProposeResult } from '../../renderer/bridge.ts';
import type { DeviceLink, DeviceSink } from './device.ts';
import { HostError } from './dispatch.ts';

export class KernelLinkDevice implements DeviceLink {
  private client: LinkClient | null = null;
  constructor(readonly target: DeviceTarget, readonly label: string, private readonly address: Target, private readonly onClose?: () => Promise<void>) {}

  async start(sink: DeviceSink, _from: number): Promise<void> {
    sink.link('connecting');
    const c = createClient(this.address, { client: 'orbital-shell', actor: 1 });
    this.client = c;
    c.onEntry((e) => sink.entries(e.seq, [e.encoded]));
    c.onConsole((l) => sink.console(l.partial ? l.text : `${l.text}\n`));
    c.onEvent((e) => {
      if (e.t === 'connected') sink.link('up');
      else if (e.t === 'disconnected') sink.link('down', e.error.message);
      else if (e.t === 'closed-by-device') sink.link('down', `the device closed the link: ${e.reason} ${e.detail}`.trim());
    });
    try {
      await c.connect();
    } catch (e) {
      sink.link('down', e instanceof Error ? e.message : String(e));
      throw new HostError('disconnected', `could not connect to ${this.label}: ${e instanceof Error ? e.message : e}`);
    }
    sink.link('up');
  }

  async propose(p: Proposal): Promise<ProposeResult> {
    if (!this.client) throw new HostError('disconnected', `${this.label} is not connected`);
    try {
      const r = await this.client.propose({ actor: p.actor, id: p.id, domain: p.domain, action: p.action, args: p.args, time: p.time });
      if (r.duplicate) return { status: 'duplicate', seq: r.seq, ...(r.receiptSeq >= 0 ? { receiptSeq: r.receiptSeq } : {}) };
      if (r.status === 'committed') return { status: 'committed', seq: r.seq, ...(r.receiptSeq >= 0 ? { receiptSeq: r.receiptSeq } : {}) };
      return { status: 'rejected', seq: r.seq, reason: `${r.reason}: ${r.detail}` };
    } catch (e) {
      const kind = (e as { kind?: string }).kind;
      throw new HostError(kind === 'timeout' || kind === 'disconnected' || kind === 'bad-input' ? kind : 'protocol', e instanceof Error ? e.message : String(e));
    }
  }

  async close(): Promise<void> {
    this.client?.close('normal', 'the shell is closing');
    this.client = null;
    await this.onClose?.();
  }
}
