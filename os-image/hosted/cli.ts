#!/usr/bin/env -S npx tsx
// orbital-os: start the hosted Orbital OS with its terminal, submit actions, inspect and verify
// its log. `orbital-os help` lists the commands.
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Replayer, decodeEntry, describeEntry, initAxiom, osReducer, systemReducer, toHex, type Proposal, type ValueMap } from '../../axiom/index.ts';
import { scanTraceSync, verifyTraceFile } from '../../axiom/node/trace-file.ts';
import { HostedOs } from './hosted-os.ts';
import { valueFromJson } from './json-value.ts';
import { serveHosted, serveStdio } from './link.ts';
import { connectLink } from '../../kernel-link/node/client.ts';
import { LinkError } from '../../kernel-link/core/errors.ts';
import type { Address } from '../../kernel-link/node/socket.ts';

const HELP = `orbital-os — the hosted Orbital OS

usage: orbital-os <command> [options]

commands:
  start            boot the hosted OS, serve kernel-link on DIR/link.sock (and --tcp PORT),
                   and open its terminal (the default). Type a console command (echo, set, get,
                   del, start, stop, ps, help) to submit it as an 'sh' action; :help lists the
                   terminal's own commands
  serve --stdio    boot and take JSON-line proposals on stdin, answer JSON lines on stdout
                   (each answer is written after the entries are durable)
  serve --link-stdio   boot and speak kernel-link on stdin/stdout (e.g. behind socat on a pty)
  serve [--tcp PORT]   boot and serve kernel-link on DIR/link.sock (and TCP) with no terminal
  submit ACTION [ARGS_JSON]   submit one os action as the session (actor 1) and print the
                   result (e.g. submit sh '{"line":"set a 1"}'): over kernel-link when the OS is
                   running, else by booting it for that one action
  log [FILE]       print the log (--from N, --json)
  verify [FILE]    verify the hash chain and every record; exit 1 at the first bad seq
  state [FILE]     replay the log and print the system and os state and their hashes
  image …          signed OS images and A/B slots (orbital-os image help)

options:
  --data DIR       the device's directory (default .orbital/hosted); FILE defaults to DIR/log.orbtrace
  --json           machine-readable output (one JSON object per line)
  --k N            checkpoint interval for a new log (default 256)
  --tcp PORT       also serve kernel-link on 127.0.0.1:PORT

exit codes: 0 ok, 1 the log failed verification or an action was rejected, 2 bad usage, 3 device busy or I/O error`;

interface Opts { data: string; json: boolean; from: number; k: number; stdio: boolean; linkStdio: boolean; tcp: number | null; rest: string[] }
function parse(argv: string[]): { cmd: string; o: Opts } {
  const o: Opts = { data: resolve('.orbital/hosted'), json: false, from: 0, k: 256, stdio: false, linkStdio: false, tcp: null, rest: [] };
  let cmd = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => { const v = argv[++i]; if (v === undefined) usage(`${a} needs a value`); return v!; };
    if (a === '--data') o.data = resolve(val());
    else if (a === '--json') o.json = true;
    else if (a === '--stdio') o.stdio = true;
    else if (a === '--link-stdio') o.linkStdio = true;
    else if (a === '--tcp') o.tcp = int(val(), a);
    else if (a === '--from') o.from = int(val(), a);
    else if (a === '--k') o.k = int(val(), a);
    else if (a === '-h' || a === '--help') { cmd = 'help'; }
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (!cmd) cmd = a;
    else o.rest.push(a);
  }
  return { cmd: cmd || 'start', o };
}
function int(s: string, what: string): number { const n = Number(s); if (!Number.isInteger(n) || n < 0) usage(`${what} takes a whole number`); return n; }
function usage(msg: string): never { process.stderr.write(`orbital-os: ${msg}\n\n${HELP}\n`); process.exit(2); }

const fileOf = (o: Opts) => o.rest[0] ? resolve(o.rest[0]) : join(o.data, 'log.orbtrace');

async function boot(o: Opts): Promise<HostedOs> {
  try { return await HostedOs.start({ dataDir: o.data, k: o.k }); }
  catch (e) { process.stderr.write(`orbital-os: ${(e as Error).message}\n`); process.exit(3); }
}

function resultJson(r: ReturnType<HostedOs['propose']>): Record<string, unknown> {
  const base: Record<string, unknown> = { status: r.status, seq: r.seq };
  if (r.status === 'committed') { base.receipt = r.receiptSeq; base.outcome = r.outcome.outcome; base.result = new TextDecoder().decode(r.outcome.result); base.result_hex = toHex(r.outcome.result); }
  if (r.status === 'rejected') { base.reason = r.reason; base.detail = r.detail; }
  if (r.status === 'duplicate') { base.of = r.of; if (r.receiptSeq !== undefined) base.receipt = r.receiptSeq; }
  return base;
}

let nextId = Date.now();
async function listen(os: HostedOs, o: Opts) {
  const addrs: Address[] = [{ path: join(o.data, 'link.sock') }];
  if (o.tcp !== null) addrs.push({ host: '127.0.0.1', port: o.tcp });
  const srv = await serveHosted(os, addrs);
  os.print(`kernel-link: ${srv.listeners.map((l) => (l.address.path ? `unix:${l.address.path}` : `tcp:127.0.0.1:${l.address.port}`)).join(', ')}`);
  return srv;
}

async function cmdStart(o: Opts) {
  const os = await boot(o);
  const srv = await listen(os, o);
  for (const b of os.consoleHistory()) process.stdout.write(b);
  os.onConsole((b) => process.stdout.write(b));
  const rl = createInterface({ input: process.stdin, terminal: process.stdin.isTTY, prompt: 'orbital> ' });
  const prompt = () => { if (process.stdin.isTTY) rl.prompt(); };
  prompt();
  const quit = () => { void srv.close(); os.close(); process.exit(0); };
  process.on('SIGINT', quit); process.on('SIGTERM', quit);
  for await (const line of rl) {
    const t = line.trim();
    if (t === ':quit' || t === ':q' || t === 'exit') break;
    if (t === ':help') process.stdout.write(':log [N]  last N entries (default 10)\n:state    state hashes and summary\n:verify   verify the log file\n:propose DOMAIN ACTION JSON   any proposal (as actor 1)\n:quit\nanything else is an sh command (try: help)\n');
    else if (t.startsWith(':log')) {
      const n = Number(t.split(/\s+/)[1] ?? 10) || 10;
      for (const e of os.entries.slice(-n)) process.stdout.write(fmtEntry(e) + '\n');
    } else if (t === ':state') {
      const h = os.seq.stateHashes();
      process.stdout.write(`head ${os.head}  system ${toHex(h.system!)}  os ${toHex(h.os!)}\n`);
    } else if (t === ':verify') {
      const v = verifyTraceFile(join(o.data, 'log.orbtrace'));
      process.stdout.write(v.ok ? `log verifies: ${v.count} entries\n` : `log BAD: ${v.failure?.message ?? v.error?.message}\n`);
    } else if (t.startsWith(':propose')) {
      const m = /^:propose\s+(\d+)\s+(\S+)\s*(.*)$/.exec(t);
      if (!m) { process.stdout.write('usage: :propose DOMAIN ACTION {json args}\n'); }
      else {
        try {
          const args = valueFromJson(m[3] ? JSON.parse(m[3]) : {}) as ValueMap;
          process.stdout.write(JSON.stringify(resultJson(os.propose({ actor: 1, id: nextId++, domain: Number(m[1]), action: m[2]!, args, time: 0 }))) + '\n');
        } catch (e) { process.stdout.write(`bad arguments: ${(e as Error).message}\n`); }
      }
    } else {
      const r = os.propose({ actor: 1, id: nextId++, domain: 1, action: 'sh', args: { line }, time: 0 });
      if (r.status === 'rejected') process.stdout.write(`rejected: ${r.reason}: ${r.detail}\n`);
    }
    prompt();
  }
  quit();
}

/** JSON lines in: {"actor","id","domain","action","args","time"}; out: the result, after fsync. */
async function cmdServe(o: Opts) {
  if (o.linkStdio) {
    const os = await boot(o);
    serveStdio(os);
    const quit = () => { os.close(); process.exit(0); };
    process.stdin.once('end', quit); process.on('SIGTERM', quit); process.on('SIGINT', quit);
    return;
  }
  if (!o.stdio) {
    const os = await boot(o);
    const srv = await listen(os, o);
    for (const b of os.consoleHistory()) process.stdout.write(b);
    os.onConsole((b) => process.stdout.write(b));
    const quit = () => { void srv.close(); os.close(); process.exit(0); };
    process.on('SIGTERM', quit); process.on('SIGINT', quit);
    return;
  }
  const os = await boot(o);
  const out = (x: unknown) => process.stdout.write(JSON.stringify(x) + '\n');
  out({ event: 'ready', head: os.head, device: toHex(os.deviceId), boot: toHex(os.bootId), recovered: os.recovered });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let p: Proposal;
    try {
      const j = JSON.parse(line);
      if (j.query === 'state') { const h = os.seq.stateHashes(); out({ state: { system: toHex(h.system!), os: toHex(h.os!) }, head: os.head, open: os.seq.system.open.size }); continue; }
      p = { actor: j.actor ?? 1, id: j.id, domain: j.domain ?? 1, action: j.action, args: valueFromJson(j.args ?? {}) as ValueMap, time: j.time ?? 0 };
      if (!Number.isSafeInteger(p.id) || typeof p.action !== 'string') throw new TypeError('needs an integer id and a string action');
    } catch (e) { out({ error: 'bad-input', message: `not a proposal: ${(e as Error).message}` }); continue; }
    out({ id: p.id, ...resultJson(os.propose(p)) });
  }
  os.close();
}

async function cmdSubmit(o: Opts) {
  const [action, args] = o.rest;
  if (!action) usage('submit needs an ACTION');
  let a: ValueMap;
  try { a = valueFromJson(args ? JSON.parse(args) : {}) as ValueMap; } catch (e) { usage(`ARGS_JSON: ${(e as Error).message}`); }
  const sock = join(o.data, 'link.sock');
  if (existsSync(sock)) {
    // The OS is running: go over kernel-link like any other client.
    try {
      await initAxiom();
      const c = await connectLink({ path: sock }, { client: 'orbital-os submit', reconnect: false, handshakeTimeoutMs: 3000 });
      const reply = await c.propose({ id: nextId++, domain: 1, action, args: a! });
      let j: Record<string, unknown> = { status: reply.duplicate ? 'duplicate' : reply.status, seq: reply.seq };
      if (reply.status === 'committed') {
        const rc = await c.receipt(reply.seq, 10_000);
        j = { ...j, receipt: rc.seq, outcome: rc.outcome, result: new TextDecoder().decode(rc.result), result_hex: toHex(rc.result) };
      } else j = { ...j, reason: reply.reason, detail: reply.detail };
      c.close();
      printSubmit(o, j);
      process.exit(reply.status === 'rejected' ? 1 : 0);
    } catch (e) {
      if (!(e instanceof LinkError) || e.kind !== 'disconnected') { process.stderr.write(`orbital-os: ${(e as Error).message}\n`); process.exit(3); }
      // A stale socket of an OS that is gone: boot it ourselves below.
    }
  }
  const os = await boot(o);
  const r = os.propose({ actor: 1, id: nextId++, domain: 1, action, args: a!, time: 0 });
  os.close();
  printSubmit(o, resultJson(r));
  process.exit(r.status === 'rejected' ? 1 : 0);
}

function printSubmit(o: Opts, j: Record<string, unknown>) {
  if (o.json) process.stdout.write(JSON.stringify(j) + '\n');
  else process.stdout.write(j.status === 'committed' ? `committed at ${j.seq}, receipt ${j.receipt}: ${j.outcome}${j.result ? `\n${j.result}` : ''}\n` : j.status === 'rejected' ? `rejected at ${j.seq}: ${j.reason}: ${j.detail}\n` : `duplicate of ${j.seq}\n`);
}

function fmtEntry(e: Uint8Array): string {
  const v = describeEntry(e);
  return `${String(v.seq).padStart(6)} t=${v.time} ${v.kind.padEnd(10)} ${v.domain.padEnd(7)} actor=${v.actor} ${v.hash.slice(0, 12)} ${JSON.stringify(v.payload)}`;
}

function needFile(f: string): void { if (!existsSync(f)) { process.stderr.write(`orbital-os: no log at ${f} (start the OS first, or name a trace file)\n`); process.exit(3); } }

async function cmdLog(o: Opts) {
  await initAxiom();
  const f = fileOf(o); needFile(f);
  let seq = 0;
  try {
    scanTraceSync(f, (r) => {
      if (seq++ < o.from) return;
      process.stdout.write((o.json ? JSON.stringify(describeEntry(r.entry)) : fmtEntry(r.entry)) + '\n');
    });
  } catch (e) { process.stderr.write(`orbital-os: ${(e as Error).message}\n`); process.exit(1); }
}

async function cmdVerify(o: Opts) {
  await initAxiom();
  const f = fileOf(o); needFile(f);
  const v = verifyTraceFile(f);
  if (o.json) process.stdout.write(JSON.stringify({ ok: v.ok, entries: v.count, head: v.head ? toHex(v.head) : null, failure: v.failure ?? null, error: v.error ?? null }) + '\n');
  else if (v.ok) process.stdout.write(`${f}: ok, ${v.count} entries, head ${toHex(v.head!)}\n`);
  else if (v.error) process.stdout.write(`${f}: ${v.error.reason}: ${v.error.message}\n`);
  else process.stdout.write(`${f}: BAD at seq ${v.failure!.seq}: ${v.failure!.reason}: ${v.failure!.message} (${v.count} entries before it verify)\n`);
  process.exit(v.ok ? 0 : 1);
}

async function cmdState(o: Opts) {
  await initAxiom();
  const f = fileOf(o); needFile(f);
  const v = verifyTraceFile(f);
  if (!v.ok) { process.stderr.write(`orbital-os: the log does not verify (${v.failure?.message ?? v.error?.message}); run verify\n`); process.exit(1); }
  const r = new Replayer([systemReducer, osReducer]);
  scanTraceSync(f, (rec) => { const d = decodeEntry(rec.entry); if (d.ok) r.apply(d.value); });
  const h = r.hashes();
  const os = osReducer.toValue(r.stateOf(osReducer)!), sys = systemReducer.toValue(r.stateOf(systemReducer)!);
  const { jsonValue } = await import('../../axiom/describe.ts');
  const j = { entries: v.count, hashes: { system: toHex(h.system!), os: toHex(h.os!) }, system: jsonValue(sys), os: jsonValue(os) };
  process.stdout.write(o.json ? JSON.stringify(j) + '\n' : JSON.stringify(j, null, 2) + '\n');
}

if (process.argv[2] === 'image') {
  const { imageMain, IMAGE_HELP } = await import('../image/cli.ts');
  if (process.argv[3] === 'help' || process.argv.length === 3) { process.stdout.write(IMAGE_HELP + '\n'); process.exit(0); }
  process.exit(await imageMain(process.argv.slice(3)));
}
const { cmd, o } = parse(process.argv.slice(2));
switch (cmd) {
  case 'help': process.stdout.write(HELP + '\n'); break;
  case 'start': await cmdStart(o); break;
  case 'serve': await cmdServe(o); break;
  case 'submit': await cmdSubmit(o); break;
  case 'log': await cmdLog(o); break;
  case 'verify': await cmdVerify(o); break;
  case 'state': await cmdState(o); break;
  default: usage(`unknown command '${cmd}'`);
}
