// JSON ⇄ Axiom values for people and machines: bytes as {"$bytes": "hex"}.
import { fromHex, type Value, type ValueMap } from '../../axiom/index.ts';

export function valueFromJson(j: unknown, path = 'args'): Value {
  if (j === null || typeof j === 'boolean' || typeof j === 'string') return j;
  if (typeof j === 'number') { if (!Number.isFinite(j)) throw new TypeError(`${path}: not a finite number`); return j; }
  if (Array.isArray(j)) return j.map((x, i) => valueFromJson(x, `${path}[${i}]`));
  if (typeof j === 'object') {
    const o = j as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o.$bytes === 'string') {
      if (!/^([0-9a-fA-F]{2})*$/.test(o.$bytes)) throw new TypeError(`${path}: $bytes must be hex`);
      return fromHex(o.$bytes);
    }
    const m: ValueMap = {};
    for (const [k, v] of Object.entries(o)) m[k] = valueFromJson(v, `${path}.${k}`);
    return m;
  }
  throw new TypeError(`${path}: cannot convert ${typeof j}`);
}
