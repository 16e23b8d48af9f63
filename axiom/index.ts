// Axiom: the public entry of the pure core. Node-side file I/O is in axiom/node/.
export * from './types.ts';
export { initAxiom, blake3, blake3Parts, blake3Reference, fastHashReady, equalBytes, toHex, fromHex } from './hash.ts';
export { encodeValue, decodeValue, Writer, EncodeError, isMap, getStr, getInt, getBytes, utf8Bytes, fromUtf8 } from './value.ts';
export { scanValue } from './scan.ts';
export { encodeEntry, decodeEntry, decodeEntryTrusted, entryHash, readHeader, GENESIS, type EntryHeader } from './entry.ts';
export { Sequencer, type Appended, type ProposeResult, type SequencerOptions, type SequencerSnapshot } from './sequencer.ts';
export { systemReducer, type SystemState } from './reducers/system.ts';
export { osReducer, OS_ACTIONS, checkArgs, hasCap, jobResult, INITIAL_CAPS, type OsState } from './reducers/os.ts';
export { labReducer, LAB_ACTIONS, checkLabArgs, type LabState, type LabDevice } from './reducers/lab.ts';
export { stateHash } from './reducers/state-hash.ts';
export { Replayer, replay, Seeker } from './replay.ts';
export { ChainVerifier, verifyChain, type ChainPosition, type VerifyFailure } from './verify.ts';
export { encodeTraceHeader, decodeTraceHeader, encodeRecord, RecordParser, TRACE_HEADER_BYTES, TRACE_MAGIC, MAX_RECORD, type TraceHeader, type TraceRecord } from './trace.ts';
export { describeEntry, jsonValue, type EntryView } from './describe.ts';
export { CheckpointReplayer, type Divergence } from './checkpoints.ts';
