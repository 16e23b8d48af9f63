// Power for boards: configured shell commands (a relay, a PDU, a USB hub port) with a timeout, or
// a person asked to press the button. QEMU devices: over QMP, with a lab-owned QEMU that outlives
// the command (vm.ts).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LabError } from './errors.ts';
import type { Device, Lab } from './labfile.ts';
import { vmPowerCycle, vmPowerOff, vmPowerOn } from './vm.ts';

export type PowerAction = 'on' | 'off' | 'cycle';

export interface PowerResult {
  device: string;
  action: PowerAction;
  how: 'command' | 'manual' | 'qmp';
  ms: number;
  output?: string;
  /** QMP power: the QEMU's pid, since when it runs, its console log; what happened. */
  qemu?: { pid?: number; since?: string; consoleLog?: string; done: 'started' | 'already-on' | 'reset' | 'acpi' | 'quit' | 'kill' | 'already-off' | 'stale-record'; staleRecord?: string };
}

function runCommand(dev: Device, action: PowerAction, cmd: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ORBITAL_DEVICE: dev.name, ORBITAL_POWER: action } });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => { if (out.length < 8000) out += d; });
    c.stderr!.on('data', (d: Buffer) => { if (out.length < 8000) out += d; });
    const timer = setTimeout(() => { c.kill('SIGKILL'); rej(new LabError('timeout', 'power-failed', `${dev.name}: power ${action} command did not finish in ${timeoutMs} ms: ${cmd}`, 'lab')); }, timeoutMs);
    const onAbort = () => { c.kill('SIGKILL'); };
    signal?.addEventListener('abort', onAbort, { once: true });
    c.once('error', (e) => { clearTimeout(timer); rej(new LabError('io', 'power-failed', `${dev.name}: cannot run power ${action} command: ${e.message}`, 'lab')); });
    c.once('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (code === 0) res(out.trim());
      else rej(new LabError('io', 'power-failed', `${dev.name}: power ${action} command ${sig ? `killed (${sig})` : `exited ${code}`}: ${cmd}${out.trim() ? `\n${out.trim().slice(-500)}` : ''}`, 'lab'));
    });
  });
}

async function askPerson(dev: Device, action: PowerAction): Promise<void> {
  if (!process.stdin.isTTY) throw new LabError('bad-input', 'power-failed', `${dev.name} has manual power and there is no terminal to ask on; switch it ${action} yourself, or configure power commands in the lab file`, 'usage');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  await new Promise<void>((res) => rl.question(`>>> Switch ${dev.name} ${action === 'cycle' ? 'off and on again' : action}, then press Enter: `, () => res()));
  rl.close();
}

/** Switches a board (command or manual power). `beforeOn` runs just before the on edge (the boot's power-on mark). */
export async function power(dev: Device, action: PowerAction, o: { signal?: AbortSignal; beforeOn?: () => void | Promise<void>; lab?: Lab; append?: string } = {}): Promise<PowerResult> {
  const t0 = performance.now();
  const p = dev.power;
  if (p.kind === 'qemu') {
    if (!o.lab) throw new LabError('bug', 'bug', `power(${dev.name}): a QEMU device needs the lab (its state dir holds the QEMU record)`, 'lab');
    if (o.append && action === 'off') throw new LabError('bad-input', 'bad-usage', '--append only applies to power on or cycle (a fresh start)');
    const done = (qemu: NonNullable<PowerResult['qemu']>): PowerResult => ({ device: dev.name, action, how: 'qmp', ms: performance.now() - t0, qemu });
    if (action === 'off') {
      const r = await vmPowerOff(o.lab, dev);
      return done({ pid: r.pid, done: r.how, ...(r.detail ? { staleRecord: r.detail } : {}) });
    }
    if (action === 'on' || o.append) {
      // cycle with --append: off, then on with the new command line (a reset keeps the old one).
      if (action === 'cycle') await vmPowerOff(o.lab, dev);
      const r = await vmPowerOn(o.lab, dev, { append: o.append });
      return done({ pid: r.pid, since: r.since, consoleLog: r.consoleLog, done: r.already ? 'already-on' : 'started', ...(r.tookOver ? { staleRecord: r.tookOver } : {}) });
    }
    const r = await vmPowerCycle(o.lab, dev);
    return done({ pid: r.pid, since: r.since, consoleLog: r.consoleLog, done: r.how === 'reset' ? 'reset' : 'started' });
  }
  if (o.append) throw new LabError('bad-input', 'bad-usage', `--append is for a qemu device's kernel command line; ${dev.name} is a ${dev.kind}`);
  if (p.kind === 'manual') {
    if (action !== 'off') await o.beforeOn?.();
    await askPerson(dev, action);
    return { device: dev.name, action, how: 'manual', ms: performance.now() - t0 };
  }
  const out: string[] = [];
  const run = (a: PowerAction, cmd: string) => runCommand(dev, a, cmd, dev.timeouts.power, o.signal).then((s) => { if (s) out.push(s); });
  if (action === 'cycle' && p.cycle) { await o.beforeOn?.(); await run('cycle', p.cycle); }
  else if (action === 'cycle') { await run('off', p.off!); await o.beforeOn?.(); await run('on', p.on!); }
  else if (action === 'on') { await o.beforeOn?.(); await run('on', p.on!); }
  else await run('off', p.off!);
  return { device: dev.name, action, how: 'command', ms: performance.now() - t0, output: out.join('\n') || undefined };
}
