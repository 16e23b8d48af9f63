// A board that reboots and comes back as another USB serial port (ttyUSB0 -> ttyUSB1), its by-id
// name following it: the capture finds it again through serialport and the trace ends up equal,
// entry for entry, to the device's own log - no gap, no duplicate, both boots. The "board" is the
// hosted OS speaking kernel-link on a socat pty (`orbital-os serve --link-stdio`).
import { expect, it, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeWithTools } from '../../scripts/testkit.ts';
import { scanTraceSync } from '../../axiom/node/trace-file.ts';
import { parseLab } from '../labfile.ts';
import { captureTrace } from './capture.ts';
import { replayTrace } from './replay.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => {
  for (const k of kids) k.kill('SIGKILL');
  for (const d of dirs) { spawnSync('pkill', ['-KILL', '-f', `--data ${d}/data`]); rmSync(d, { recursive: true, force: true }); }
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(f: () => boolean, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) { if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`); await sleep(20); }
}
/** The device's log, entry by entry (hex). */
function entriesOf(file: string): string[] {
  const out: string[] = [];
  if (existsSync(file)) scanTraceSync(file, (r) => { out.push(Buffer.from(r.entry).toString('hex')); });
  return out;
}
/** Boots the OS once (as the board does while unplugged from the lab) and commits n commands: `orbital-os serve --stdio`, JSON lines in. */
async function addEntries(data: string, from: number, n: number): Promise<void> {
  const p = spawn(process.execPath, [join(ROOT, 'bin/orbital-os.mjs'), 'serve', '--stdio', '--data', data, '--k', '16'], { stdio: ['pipe', 'ignore', 'inherit'] });
  kids.push(p);
  for (let i = 0; i < n; i++) p.stdin!.write(JSON.stringify({ id: from + i, action: 'sh', args: { line: `set k${from + i} ${'v'.repeat(200)}` } }) + '\n');
  p.stdin!.end();
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`orbital-os serve --stdio exited ${code}`);
}

describeWithTools(['socat'], 'capture from a board that re-enumerates', () => {
  it('finds the board again under its by-id name after it comes back as another ttyUSB, and the trace equals the device log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-reenum-'));
    dirs.push(dir);
    const data = join(dir, 'data');
    const log = join(data, 'log.orbtrace');
    await addEntries(data, 1, 40);
    const byId = join(dir, 'by-id', 'usb-FTDI_FT232R_USB_UART_A12345-if00-port0');
    spawnSync('mkdir', ['-p', join(dir, 'by-id')]);
    const board = (tty: string) => {
      const p = spawn('socat', [`pty,raw,echo=0,link=${join(dir, tty)}`, `EXEC:"${process.execPath} ${join(ROOT, 'bin/orbital-os.mjs')} serve --link-stdio --data ${data}",pty,raw,echo=0`], { stdio: 'ignore' });
      kids.push(p);
      return p;
    };
    const plugIn = async (tty: string) => {
      const p = board(tty);
      await until(() => existsSync(join(dir, tty)), `socat's ${tty}`);
      // udev points the by-id name at whatever ttyUSB the board came back as.
      if (existsSync(byId)) unlinkSync(byId);
      symlinkSync(join(dir, tty), byId);
      return p;
    };
    const text = `version: 1\ndevices:\n  board:\n    kind: serial-board\n    console: { by-id: ${byId}, baud: 115200 }\n    link: console\n`;
    writeFileSync(join(dir, 'lab.yaml'), text);
    const parsed = parseLab(text, join(dir, 'lab.yaml'));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    const out = join(dir, 'board.orbtrace');

    const first = await plugIn('ttyUSB0');
    const ac = new AbortController();
    let written = 0;
    const cap = captureTrace({ lab: parsed.lab, device: parsed.lab.devices.get('board')!, out, signal: ac.signal, onProgress: (p) => { written = p.written; } });
    // The first boot's log (40 commands, their receipts, checkpoints, two BOOTs) comes through.
    await until(() => { const n = entriesOf(log).length; return n > 80 && written === n; }, 'the first boot captured');

    // The board reboots: its port vanishes (socat and the OS behind it die), it writes more
    // entries while it is away, and comes back as ttyUSB1.
    first.kill('SIGKILL');
    spawnSync('pkill', ['-KILL', '-f', `--data ${data}`]);
    unlinkSync(byId);
    await until(() => spawnSync('pgrep', ['-f', `--data ${data}`]).status !== 0, 'the old OS process gone');
    await addEntries(data, 100, 25);
    // Another adapter takes the freed pty number, so the board comes back on a new device node
    // (as ttyUSB0 -> ttyUSB1), not on the old one reused.
    const other = spawn('socat', [`pty,raw,echo=0,link=${join(dir, 'ttyUSB0')}`, 'EXEC:"sleep 120"'], { stdio: 'ignore' });
    kids.push(other);
    await until(() => existsSync(join(dir, 'ttyUSB0')), 'the other adapter');
    await plugIn('ttyUSB1');
    expect(realpathSync(join(dir, 'ttyUSB1'))).not.toBe(realpathSync(join(dir, 'ttyUSB0')));
    await until(() => { const n = entriesOf(log).length; return n > 130 && written === n; }, 'the second boot captured');
    ac.abort();
    const r = await cap;

    expect(r.reconnects).toBeGreaterThanOrEqual(1);
    expect(new Set(r.boots).size).toBeGreaterThanOrEqual(2);
    expect(r.duplicatesSkipped).toBeGreaterThanOrEqual(0);
    // Entry for entry the device's own log: nothing missing, nothing twice, nothing reordered.
    expect(entriesOf(out)).toEqual(entriesOf(log));
    const rep = await replayTrace(out);
    expect(rep.ok).toBe(true);
    expect(rep.checkpoints).toBeGreaterThanOrEqual(5);
  });
});
