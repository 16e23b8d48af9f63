import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseLab, parseDuration, formatIssue, loadLab } from './labfile.ts';
import { LabError } from './errors.ts';

const good = `version: 1
devices:
  qemu-1:
    kind: qemu
    tags: [x86, ci]
    flash: { target: images/qemu-1.img }
    boot:
      milestones:
        - { name: kernel, pattern: "Orbital kernel" }
        - { name: link, pattern: "link up" }
      success: "READY"
    timeouts: { boot: 30s }
  board-1:
    kind: serial-board
    console: { by-id: usb-FTDI_FT232R_A12345-if00-port0, baud: 921600 }
    power: { kind: command, on: "relay 1 on", off: "relay 1 off" }
    flash: { target: /dev/disk/by-id/usb-Generic_SD-0:0 }
`;

function issues(text: string) {
  const r = parseLab(text, '/lab/lab.yaml');
  if (r.ok) throw new Error('expected issues');
  return r.issues;
}

describe('lab file', () => {
  it('reads a good file with defaults filled in', () => {
    const r = parseLab(good, '/lab/lab.yaml');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const q = r.lab.devices.get('qemu-1')!;
    expect(q.kind).toBe('qemu');
    expect(q.flashTarget).toBe('/lab/images/qemu-1.img');
    expect(q.power.kind).toBe('qemu');
    expect(q.boot.milestones.map((m) => m.name)).toEqual(['kernel', 'link']);
    expect(q.boot.fatal.map((f) => f.name)).toContain('panic');
    expect(q.timeouts.boot).toBe(30_000);
    const b = r.lab.devices.get('board-1')!;
    expect(b.console.byId).toBe('/dev/serial/by-id/usb-FTDI_FT232R_A12345-if00-port0');
    expect(b.console.baud).toBe(921600);
    expect(b.console.charDelayMs).toBe(0);
    const paced = parseLab(good.replace('baud: 921600 }', 'baud: 921600, char-delay: 10ms }'), '/lab/lab.yaml');
    expect(paced.ok && paced.lab.devices.get('board-1')!.console.charDelayMs).toBe(10);
    expect(r.lab.stateDir).toBe('/lab/.orbital/lab');
  });

  it.each([
    ['a wrong type', good.replace('baud: 921600', 'baud: fast'), 15, 'devices.board-1.console.baud', /integer/],
    ['an unknown field, with a suggestion', good.replace('timeouts: { boot: 30s }', 'timeout: { boot: 30s }'), 12, 'devices.qemu-1.timeout', /did you mean "timeouts"/],
    ['another tool\'s name for a field', good.replace('baud: 921600', 'speed: 921600'), 15, 'devices.board-1.console.speed', /unknown field - this lab file calls it "baud"/],
    ['a console path', good.replace('by-id: usb-FTDI', 'path: usb-FTDI'), 15, 'devices.board-1.console.path', /this lab file calls it "port"/],
    ['a bad kind', good.replace('kind: serial-board', 'kind: board'), 14, 'devices.board-1.kind', /qemu \| serial-board/],
    ['a health check with no command', good.replace('timeouts: { boot: 30s }', 'timeouts: { boot: 30s }\n    health: { check: [ { expect: "ok" } ] }'), 13, 'devices.qemu-1.health.check[0].run', /required/],
    ['a health check with two lines', good.replace('timeouts: { boot: 30s }', 'timeouts: { boot: 30s }\n    health: { check: [ { run: "a\\nb" } ] }'), 13, 'devices.qemu-1.health.check[0].run', /one command line/],
    ['a health check with a bad regex', good.replace('timeouts: { boot: 30s }', 'timeouts: { boot: 30s }\n    health: { check: [ { run: "x", expect: "(" } ] }'), 13, 'devices.qemu-1.health.check[0].expect', /regular expression/],
    ['a bad regex', good.replace('"link up"', '"(link"'), 10, 'devices.qemu-1.boot.milestones[1]', /regular expression/],
    ['a bad duration', good.replace('boot: 30s', 'boot: soon'), 12, 'devices.qemu-1.timeouts.boot', /duration/],
    ['a bad char-delay', good.replace('baud: 921600 }', 'baud: 921600, char-delay: slow }'), 15, 'devices.board-1.console.char-delay', /duration/],
    ['a kernel name for a disk', good.replace('/dev/disk/by-id/usb-Generic_SD-0:0', '/dev/sdb'), 17, 'devices.board-1.flash.target', /by-id/],
    ['command power without off', good.replace(', off: "relay 1 off"', ''), 16, 'devices.board-1.power', /on and off/],
    ['a duplicate key', good.replace('    tags: [x86, ci]\n', '    tags: [x86, ci]\n    tags: [y]\n'), 6, '(duplicate key)', /unique/],
    ['an empty value', good.replace('    flash: { target: images/qemu-1.img }\n', '    flash:\n'), 6, 'devices.qemu-1.flash', /no value/],
    ['a bad device name', good.replace('qemu-1:', 'Qemu 1:'), 3, 'devices.Qemu 1', /lower-case/],
  ])('names line and field for %s', (_what, text, line, field, msg) => {
    const is = issues(text);
    const hit = is.find((i) => i.field === field);
    expect(hit, JSON.stringify(is)).toBeDefined();
    expect(hit!.line).toBe(line);
    expect(hit!.message).toMatch(msg);
  });

  it('reports every mistake at once, in line order', () => {
    const is = issues(good.replace('baud: 921600', 'baud: -1').replace('kind: qemu', 'kind: vm'));
    expect(is.length).toBe(2);
    expect(is[0]!.line).toBeLessThan(is[1]!.line);
    expect(formatIssue('lab.yaml', is[0]!)).toMatch(/^lab\.yaml:4:\d+: devices\.qemu-1\.kind: /);
  });

  it('rejects two devices sharing a flash target', () => {
    const t = good.replace('/dev/disk/by-id/usb-Generic_SD-0:0', '/lab/images/qemu-1.img');
    expect(issues(t).some((i) => i.field === 'devices.board-1.flash.target' && /same target/.test(i.message))).toBe(true);
  });

  it('turns a missing file into a usage error', () => {
    try { loadLab('/nonexistent/lab.yaml'); throw new Error('no throw'); } catch (e) {
      expect(e).toBeInstanceOf(LabError);
      expect((e as LabError).blame).toBe('usage');
    }
  });

  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration(1.5)).toBe(1500);
    expect(parseDuration('0s')).toBeUndefined();
    expect(parseDuration('x')).toBeUndefined();
  });

  it('never throws, whatever the text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => { parseLab(s, '/x/lab.yaml'); }), { numRuns: 300 });
    // Mutations of a good file: cut anywhere, or a character replaced.
    // (and of one with every console kind and a health check, so those parsers see broken input too)
    const more = `${good}  board-2:\n    kind: serial-board\n    console: { usb-path: 1-5.2:1.0, baud: 115200 }\n    health:\n      max-lab-failures: 2\n      check:\n        - { run: "echo ok", expect: ["^ok$", { name: x, pattern: "o(?<k>k)" }] }\n  board-3:\n    kind: serial-board\n    console: { usb-serial: A1 }\n`;
    expect(parseLab(more, '/x/lab.yaml').ok).toBe(true);
    for (const text of [good, more]) {
      fc.assert(fc.property(fc.nat(text.length), fc.string({ minLength: 1, maxLength: 1 }), (i, c) => {
        parseLab(text.slice(0, i), '/x/lab.yaml');
        parseLab(text.slice(0, i) + c + text.slice(i + 1), '/x/lab.yaml');
      }), { numRuns: 300 });
    }
  });

  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
  const deviceArb = fc.record({
    kind: fc.constantFrom('qemu', 'serial-board'),
    tags: fc.array(name, { maxLength: 3 }),
    baud: fc.constantFrom(9600, 115200, 921600),
    boot: fc.integer({ min: 1, max: 600 }),
  });

  it('round-trips generated lab files (stringify, parse, same devices)', () => {
    fc.assert(fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 4 }), fc.array(deviceArb, { minLength: 4, maxLength: 4 }), (names, devs) => {
      const devices: Record<string, unknown> = {};
      names.forEach((n, i) => {
        const d = devs[i]!;
        devices[n] = d.kind === 'qemu'
          ? { kind: 'qemu', tags: d.tags, flash: { target: `img/${n}.img` }, timeouts: { boot: `${d.boot}s` } }
          : { kind: 'serial-board', tags: d.tags, console: { port: `/dev/pts/${i}`, baud: d.baud }, timeouts: { boot: `${d.boot}s` } };
      });
      const r = parseLab(stringify({ version: 1, devices }), '/x/lab.yaml');
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect([...r.lab.devices.keys()]).toEqual(names);
      names.forEach((n, i) => {
        const d = r.lab.devices.get(n)!;
        expect(d.kind).toBe(devs[i]!.kind);
        expect(d.tags).toEqual(devs[i]!.tags);
        expect(d.timeouts.boot).toBe(devs[i]!.boot * 1000);
        if (d.kind === 'serial-board') expect(d.console.baud).toBe(devs[i]!.baud);
      });
    }), { numRuns: 100 });
  });

  it('points at the exact line of a bad value in a generated file', () => {
    fc.assert(fc.property(fc.uniqueArray(name, { minLength: 2, maxLength: 5 }), fc.nat(), fc.constantFrom('baud', 'kind', 'boot'), (names, pick, field) => {
      const bad = names[pick % names.length]!;
      const devices: Record<string, unknown> = {};
      for (const n of names) {
        devices[n] = { kind: n === bad && field === 'kind' ? 'toaster' : 'serial-board', console: { port: `/dev/pts/${n}`, baud: n === bad && field === 'baud' ? 'fast' : 115200 }, timeouts: { boot: n === bad && field === 'boot' ? 'later' : '5s' } };
      }
      const text = stringify({ version: 1, devices });
      const lines = text.split('\n');
      const devLine = lines.findIndex((l) => l === `  ${bad}:`);
      const key = field === 'boot' ? 'boot:' : `${field}:`;
      const want = lines.findIndex((l, i) => i > devLine && l.trim().startsWith(key)) + 1;
      const is = issues(text);
      expect(is.length).toBe(1);
      expect(is[0]!.line).toBe(want);
      expect(is[0]!.field).toContain(`devices.${bad}.`);
    }), { numRuns: 100 });
  });
});
