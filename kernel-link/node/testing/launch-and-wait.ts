// Test helper process: launches QEMU (paused), prints its pid as JSON, then waits forever, so a
// test can SIGKILL this process and check that QEMU does not outlive it.
import { QemuMachine } from '../qemu.ts';
import { tinyKernel } from './tiny-kernel.ts';

// argv[2]: 'pdeathsig' or 'watchdog' keeps only that orphan guard, 'none' neither (the control
// case a test uses to prove it can fail); anything else keeps both.
const only = process.argv[2];
const guards = only === 'pdeathsig' ? { watchdog: false } : only === 'watchdog' ? { pdeathsig: false } : only === 'none' ? { pdeathsig: false, watchdog: false } : {};
const m = await QemuMachine.launch({ kernel: tinyKernel(), paused: true, accel: 'tcg', guards });
process.stdout.write(JSON.stringify({ qemu: m.pid }) + '\n');
setInterval(() => {}, 1 << 30);
