// Worker side of verifyAndReplayFile: verifies the file on the other core.
import { parentPort, workerData } from 'node:worker_threads';
import { initAxiom } from '../hash.ts';
import { verifyTraceFile } from './trace-file.ts';

await initAxiom();
const r = verifyTraceFile(workerData.path as string);
parentPort!.postMessage(r);
