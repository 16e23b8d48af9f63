// bmaptool's block map (.bmap XML, versions 1.x and 2.x): which blocks of an image hold data.
// Only the small, fixed subset bmaptool writes is read; anything else is a typed error with the
// line, never an exception. The file's own checksum (BmapFileChecksum / BmapFileSHA1) is checked
// the way bmaptool does: hash the file with the checksum text replaced by zeros.
import { createHash } from 'node:crypto';

export interface BmapRange {
  /** First and last block, inclusive (as in the XML). */
  first: number;
  last: number;
  /** Hex checksum of the range's bytes, or undefined when the file has none for it. */
  checksum?: string;
}

export interface Bmap {
  version: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocksCount: number;
  checksumType: 'sha1' | 'sha256' | null;
  ranges: BmapRange[];
}

export interface BmapIssue { line: number; message: string }
export type BmapResult = { ok: true; bmap: Bmap } | { ok: false; error: BmapIssue };

const MAX_TEXT = 64 * 1024 * 1024;

export function parseBmap(input: string | Uint8Array): BmapResult {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length > MAX_TEXT) return fail(1, `bmap file is ${bytes.length} bytes; more than ${MAX_TEXT} is not a bmap`);
  const text = bytes.toString('latin1');
  const lineAt = (i: number) => { let n = 1; for (let k = 0; k < i && k < text.length; k++) if (text.charCodeAt(k) === 10) n++; return n; };
  // Blank out comments, keeping offsets (and so line numbers) intact.
  const body = text.replace(/<!--[\s\S]*?(-->|$)/g, (m) => m.replace(/[^\n]/g, ' '));
  const root = /<bmap\s+version\s*=\s*["']([0-9]+)\.([0-9]+)["']\s*>/.exec(body);
  if (!root) return fail(1, 'not a bmap file: no <bmap version="X.Y"> element');
  const major = Number(root[1]);
  const minor = Number(root[2]);
  if (major < 1 || major > 2) return fail(lineAt(root.index), `bmap version ${root[1]}.${root[2]} is not supported (1.x and 2.x are)`);
  if (!/<\/bmap>/.test(body)) return fail(lineAt(body.length), 'bmap file is truncated: no </bmap>');

  const num = (tag: string, required: boolean): number | undefined | BmapIssue => {
    const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(body);
    if (!m) return required ? { line: 1, message: `missing <${tag}>` } : undefined;
    const s = m[1]!.trim();
    if (!/^[0-9]{1,16}$/.test(s) || !Number.isSafeInteger(Number(s))) return { line: lineAt(m.index), message: `<${tag}> must be a whole number (got "${s.slice(0, 40)}")` };
    return Number(s);
  };
  const vals: Record<string, number | undefined> = {};
  for (const [tag, req] of [['ImageSize', true], ['BlockSize', true], ['BlocksCount', true], ['MappedBlocksCount', true]] as const) {
    const v = num(tag, req);
    if (typeof v === 'object') return { ok: false, error: v };
    vals[tag] = v;
  }
  const imageSize = vals.ImageSize!;
  const blockSize = vals.BlockSize!;
  const blocksCount = vals.BlocksCount!;
  if (blockSize < 512 || blockSize > 1 << 24 || (blockSize & (blockSize - 1)) !== 0) return fail(1, `<BlockSize> ${blockSize} must be a power of two between 512 and 16 MiB`);
  if (Math.ceil(imageSize / blockSize) !== blocksCount) return fail(1, `<BlocksCount> ${blocksCount} does not match <ImageSize> ${imageSize} / <BlockSize> ${blockSize}`);

  // 1.4 and 2.x name the checksum type; older files use SHA1 attributes (and 1.0-1.1 have none).
  let checksumType: Bmap['checksumType'] = null;
  let attr = 'sha1';
  let fileTag = 'BmapFileSHA1';
  if (major > 1 || minor >= 4) {
    const t = /<ChecksumType>([^<]*)<\/ChecksumType>/.exec(body);
    if (!t) return fail(1, 'missing <ChecksumType> (required from bmap 1.4)');
    const ct = t[1]!.trim();
    if (ct !== 'sha256' && ct !== 'sha1') return fail(lineAt(t.index), `<ChecksumType> "${ct}" is not supported (sha256, sha1)`);
    checksumType = ct;
    attr = 'chksum';
    fileTag = 'BmapFileChecksum';
  } else if (minor >= 2) checksumType = 'sha1';
  const hexLen = checksumType === 'sha256' ? 64 : 40;

  const bm = /<BlockMap>([\s\S]*?)<\/BlockMap>/.exec(body);
  if (!bm) return fail(1, 'missing <BlockMap>');
  const bmStart = bm.index + bm[0].indexOf('>') + 1;
  const ranges: BmapRange[] = [];
  const rangeRe = /<Range((?:\s+[A-Za-z0-9_]+\s*=\s*"[^"]*")*)\s*>([^<]*)<\/Range>|<[^>]*>/g;
  let m: RegExpExecArray | null;
  let mapped = 0;
  while ((m = rangeRe.exec(bm[1]!))) {
    const line = lineAt(bmStart + m.index);
    if (m[2] === undefined) return fail(line, `unexpected element ${m[0].slice(0, 40)} in <BlockMap>`);
    const rm = /^\s*([0-9]{1,16})(?:\s*-\s*([0-9]{1,16}))?\s*$/.exec(m[2]);
    if (!rm) return fail(line, `range "${m[2].trim().slice(0, 40)}" must be "N" or "A-B"`);
    const first = Number(rm[1]);
    const last = rm[2] === undefined ? first : Number(rm[2]);
    if (last < first) return fail(line, `range ${first}-${last} ends before it starts`);
    if (last >= blocksCount) return fail(line, `range ${first}-${last} goes past the image (${blocksCount} blocks)`);
    const prev = ranges[ranges.length - 1];
    if (prev && first <= prev.last) return fail(line, `range ${first}-${last} overlaps or is out of order after ${prev.first}-${prev.last}`);
    const a = new RegExp(`\\b${attr}\\s*=\\s*"([^"]*)"`).exec(m[1] ?? '');
    let checksum: string | undefined;
    if (a) {
      if (!checksumType) return fail(line, `a checksum attribute in bmap ${major}.${minor}, which has none`);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(a[1]!)) return fail(line, `checksum "${a[1]!.slice(0, 70)}" is not ${hexLen} hex digits (${checksumType})`);
      checksum = a[1]!.toLowerCase();
    }
    ranges.push({ first, last, checksum });
    mapped += last - first + 1;
  }
  if (mapped !== vals.MappedBlocksCount) return fail(1, `<MappedBlocksCount> is ${vals.MappedBlocksCount} but the ranges map ${mapped} blocks`);

  // The file's own checksum guards against a bmap edited or cut by hand.
  if (checksumType && (major > 1 || minor >= 3)) {
    const fm = new RegExp(`<${fileTag}>([^<]*)</${fileTag}>`).exec(body);
    if (!fm) return fail(1, `missing <${fileTag}>`);
    const want = fm[1]!.trim().toLowerCase();
    if (!new RegExp(`^[0-9a-f]{${hexLen}}$`).test(want)) return fail(lineAt(fm.index), `<${fileTag}> is not ${hexLen} hex digits`);
    const pos = text.indexOf(fm[1]!.trim(), fm.index);
    const zeroed = Buffer.from(bytes);
    zeroed.fill(0x30, pos, pos + hexLen);
    const got = createHash(checksumType).update(zeroed).digest('hex');
    if (got !== want) return fail(lineAt(fm.index), `the bmap file's own checksum does not match (file edited or damaged): want ${want}, got ${got}`);
  }
  return { ok: true, bmap: { version: `${major}.${minor}`, imageSize, blockSize, blocksCount, mappedBlocksCount: mapped, checksumType, ranges } };
}

function fail(line: number, message: string): BmapResult {
  return { ok: false, error: { line, message } };
}

/** Writes a bmap in bmaptool's 2.0 layout (used by tests and to describe raw images). */
export function formatBmap(b: Omit<Bmap, 'version' | 'mappedBlocksCount' | 'checksumType'> & { checksumType?: 'sha256' }): string {
  const mapped = b.ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  const rangeLines = b.ranges.map((r) => `        <Range${r.checksum ? ` chksum="${r.checksum}"` : ''}> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </Range>`).join('\n');
  const zeros = '0'.repeat(64);
  const text = `<?xml version="1.0" ?>\n<!-- bmap written by orbital-lab -->\n<bmap version="2.0">\n    <ImageSize> ${b.imageSize} </ImageSize>\n    <BlockSize> ${b.blockSize} </BlockSize>\n    <BlocksCount> ${b.blocksCount} </BlocksCount>\n    <MappedBlocksCount> ${mapped} </MappedBlocksCount>\n    <ChecksumType> sha256 </ChecksumType>\n    <BmapFileChecksum> ${zeros} </BmapFileChecksum>\n    <BlockMap>\n${rangeLines}\n    </BlockMap>\n</bmap>\n`;
  const sum = createHash('sha256').update(text, 'latin1').digest('hex');
  return text.replace(zeros, sum);
}

/** Mapped byte ranges [start, end) of the image, clipped to the image size (the last block may be short). */
export function byteRanges(b: Bmap): Array<{ start: number; end: number; checksum?: string }> {
  return b.ranges.map((r) => ({ start: r.first * b.blockSize, end: Math.min((r.last + 1) * b.blockSize, b.imageSize), checksum: r.checksum }));
}
