// What a device implements to be served over kernel-link (docs/kernel-link.md). The hosted OS
// (os-image/hosted/) implements it over its sequencer and trace file; tests use MemoryDevice.
// kernel-link never imports a device: devices import this interface.
import type { Proposal } from '../../axiom/types.ts';

export interface DeviceInfo {
  deviceId: Uint8Array; // 16 bytes, as in the BOOT entry
  bootId: Uint8Array; // 16 bytes, this boot
  os: string; // e.g. 'orbital-hosted 0.1'
  /** The seq the next entry will get (= number of entries in the log). */
  head: number;
  /** Hash of entry head-1 (32 zero bytes when the log is empty). */
  headHash: Uint8Array;
  /** The first seq the device still holds (0 unless it dropped old entries). */
  first?: number;
}

export type ProposeOutcome =
  | { status: 'committed'; seq: number; receiptSeq?: number }
  | { status: 'rejected'; seq: number; reason: string; detail: string }
  | { status: 'duplicate'; of: 'committed' | 'rejected'; seq: number; receiptSeq?: number };

export interface LinkDevice {
  info(): DeviceInfo;
  /**
   * Decides a proposal. Resolve only once the entries are durable (the hosted OS fsyncs first):
   * a RESULT is a promise the client may rely on. A rejection of the promise is answered with
   * ERROR 'internal' and the client retries.
   */
  propose(p: Proposal): ProposeOutcome | Promise<ProposeOutcome>;
  /** Up to `max` encoded entries from seq `from`, consecutive; fewer (or none) near the head. */
  read(from: number, max: number): Uint8Array[] | Promise<Uint8Array[]>;
  /** Calls `listener` after entries were appended (durably). Returns the unsubscribe function. */
  onAppend(listener: () => void): () => void;
  /** Console output of the device (boot messages, logs). Optional. */
  onConsole?(listener: (bytes: Uint8Array) => void): () => void;
  /** Bytes a host sent outside frames (a person typing at the console). Optional. */
  consoleInput?(bytes: Uint8Array): void;
}
