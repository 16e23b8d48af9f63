// Power for boards: configured shell commands (a relay, a PDU, a USB hub port) with a timeout, or
// a person asked to press the button. QEMU devices are powered through their QEMU process (boot.ts).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LabError } from './errors.ts';
import type { Device } from './labfile.ts';

export type PowerAction = 'on' | 'off' | 'cycle';

export interface PowerResult { device: string; action: PowerAction; how: 'command' | 'manual'; ms: number; output?: string }

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
export async function power(dev: Device, action: PowerAction, o: { signal?: AbortSignal; beforeOn?: () => void | Promise<void> } = {}): Promise<PowerResult> {
  const t0 = performance.now();
  const p = dev.power;
  if (p.kind === 'qemu') throw new LabError('bad-input', 'bad-usage', `${dev.name} is a QEMU device: it is powered by the command that owns its QEMU (boot, console, capture)`);
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
