// Node's native CRC-32 (zlib.crc32, Node ≥ 20.15), same results as core/crc32.ts, several times faster.
import * as zlib from 'node:zlib';
import { crc32 as jsCrc32, type Crc32 } from '../core/crc32.ts';

const native = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
export const zlibCrc32: Crc32 = native ? (d, prev = 0) => native(d, prev) : jsCrc32;
