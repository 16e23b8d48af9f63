#!/usr/bin/env node
// `orbital-lab`: loads hwlab/cli.ts through tsx in this same process (no wrapper child), so a
// signal sent to orbital-lab reaches the process that holds the device lock and the target.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../hwlab/cli.ts');
process.exit(await main(process.argv.slice(2)));
