// A connection to one device, as the host services see it. Implementations: the kernel-link
// client (hosted OS, QEMU guest, serial port) and an in-process sequencer.
import type { Proposal } from '../../axiom/index.ts';
import type { DeviceTarget, ProposeResult } from '../../renderer/bridge.ts';

export interface DeviceSink {
  /** Consecutive encoded entries starting at `firstSeq`. */
  entries(firstSeq: number, list: Uint8Array[]): void;
  console(text: string): void;
  link(state: 'connecting' | 'up' | 'down', error?: string): void;
}

export interface DeviceLink {
  readonly target: DeviceTarget;
  readonly label: string;
  /** Connects and starts streaming entries from seq `from` into the sink. */
  start(sink: DeviceSink, from: number): Promise<void>;
  propose(p: Proposal): Promise<ProposeResult>;
  close(): Promise<void>;
}
