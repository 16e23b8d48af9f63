// A device whose sequencer runs inside the host process, without a link. Used by unit tests of
// the host services and by the frame benchmark, where a link would only add noise; `npm start`
// uses the hosted OS over kernel-link.
import { Sequencer, initAxiom, type Appended, type Proposal } from '../../axiom/index.ts';
import type { ProposeResult } from '../../renderer/bridge.ts';
import type { DeviceLink, DeviceSink } from './device.ts';

export class InProcessDevice implements DeviceLink {
  readonly target = 'hosted' as const;
  readonly label: string;
  private seq!: Sequencer;
  private log: Uint8Array[] = [];
  private sink: DeviceSink | null = null;
  constructor(private readonly opts: { deviceId?: Uint8Array; bootId?: Uint8Array; k?: number; label?: string } = {}) {
    this.label = opts.label ?? 'in-process device';
  }

  async start(sink: DeviceSink, from: number): Promise<void> {
    await initAxiom();
    if (!this.seq) {
      this.seq = new Sequencer({ deviceId: this.opts.deviceId ?? new Uint8Array(16).fill(0xd0), bootId: this.opts.bootId ?? new Uint8Array(16).fill(0xb0), os: 'orbital-inprocess 0.1', k: this.opts.k ?? 256 });
      this.push(this.seq.boot());
    }
    this.sink = sink;
    sink.link('up');
    if (from < this.log.length) sink.entries(from, this.log.slice(from));
  }

  private push(list: Appended[]) {
    if (!list.length) return;
    const first = list[0]!.seq;
    for (const a of list) this.log.push(a.encoded);
    this.sink?.entries(first, list.map((a) => a.encoded));
  }

  async propose(p: Proposal): Promise<ProposeResult> {
    const r = this.seq.propose(p);
    this.push(r.entries);
    // Echo sh commands on the console as the hosted OS does, so the Console window reads the same.
    if (r.status === 'committed' && p.domain === 1 && p.action === 'sh') {
      const out = new TextDecoder().decode(r.outcome.result);
      this.sink?.console(`$ ${String(p.args.line)}\n${out ? out + '\n' : ''}`);
    }
    if (r.status === 'committed') return { status: 'committed', seq: r.seq, receiptSeq: r.receiptSeq };
    if (r.status === 'rejected') return { status: 'rejected', seq: r.seq, reason: `${r.reason}: ${r.detail}` };
    return { status: 'duplicate', seq: r.seq, ...(r.receiptSeq !== undefined ? { receiptSeq: r.receiptSeq } : {}) };
  }

  async close(): Promise<void> { this.sink?.link('down'); this.sink = null; }
}
