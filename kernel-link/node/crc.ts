// Native fast paths for the codec on Node: zlib.crc32 (Node ≥ 20.15) and Buffer's memchr-based
// indexOf. Same results as the pure ones in core/, several times faster. Pass `nodeCodec` (or its
// parts) to serveLink / FrameDecoder / encodeFrame; the Node client uses it by default.
import * as zlib from 'node:zlib';
import { crc32 as jsCrc32, type Crc32 } from '../core/crc32.ts';
import type { Alloc, FindByte, FrameCodec } from '../core/frame.ts';

const native = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
export const zlibCrc32: Crc32 = native ? (d, prev = 0) => native(d, prev) : jsCrc32;

const bufferIndexOf = Buffer.prototype.indexOf as unknown as (this: Uint8Array, v: number, from: number) => number;
export const nodeFindByte: FindByte = (buf, byte, from) => bufferIndexOf.call(buf, byte, from);

/**
 * Unzeroed memory for frames (every byte is written before it is read). A plain Uint8Array over
 * the Buffer's own ArrayBuffer: Buffer's slice() is a view, and callers rely on slice() copying.
 */
export const nodeAlloc: Alloc = (n) => new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);

export const nodeCodec: FrameCodec = { crc32: zlibCrc32, findByte: nodeFindByte, alloc: nodeAlloc };
