// Random proposals and the logs a sequencer makes of them, for property tests (axiom's and the lab
// snapshot's): every action the OS reducer knows, actors with and without capabilities, ids that repeat.
import fc from 'fast-check';
import { Sequencer, type Proposal } from '../axiom/index.ts';

export const proposalArb: fc.Arbitrary<Proposal> = fc.record({
  actor: fc.constantFrom(0, 1, 2, 7),
  id: fc.nat(1_000_000),
  domain: fc.constantFrom(1, 1, 1, 2, 5),
  time: fc.oneof(fc.constant(0), fc.nat(1000)),
  pair: fc.oneof(
    fc.record({ action: fc.constant('sh'), args: fc.record({ line: fc.constantFrom('set a 1', 'get a', 'del a', 'start x', 'stop x', 'ps', 'echo hi there', 'bogus') }) }),
    fc.record({ action: fc.constant('kv.set'), args: fc.record({ key: fc.constantFrom('a', 'b', ''), value: fc.string({ maxLength: 8 }) }) }),
    fc.record({ action: fc.constant('svc.start'), args: fc.record({ name: fc.constantFrom('net', 'fs') }) }),
    fc.record({ action: fc.constant('cap.grant'), args: fc.record({ actor: fc.constant(7), cap: fc.constantFrom('kv', 'svc') }) }),
    fc.record({ action: fc.constant('job.run'), args: fc.record({ name: fc.constant('j'), rounds: fc.integer({ min: 1, max: 20 }), seed: fc.uint8Array({ maxLength: 4 }) }) }),
    fc.record({ action: fc.constant('window.open'), args: fc.record({ title: fc.string({ maxLength: 5 }) }) }),
  ),
}).map(({ pair, ...p }) => ({ ...p, action: pair.action, args: pair.args as Proposal['args'] }));

export function buildLog(ps: Proposal[], k = 8) {
  const s = new Sequencer({ deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), os: 'test', k });
  const out = [...s.boot()];
  for (const p of ps) out.push(...s.propose(p).entries);
  return { s, out };
}
