// An ES module with a top-level await.
import { setTimeout as sleep } from 'node:timers/promises';

await sleep(1);
export const handler = async (event) => ({ module: 'esm', echo: event });
