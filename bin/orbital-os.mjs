#!/usr/bin/env node
// `orbital-os`: loads os-image/hosted/cli.ts through tsx in this same process (no wrapper child),
// so a signal sent to orbital-os reaches the hosted OS itself (its log is synced per commit).
import { register } from 'tsx/esm/api';

register();
await import('../os-image/hosted/cli.ts');
