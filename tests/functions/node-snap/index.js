// For snapshots: state built at init (kept by a restore) and values drawn per invocation.
const crypto = require('crypto');
const fs = require('fs');

const busyUntil = Date.now() + Number(process.env.INIT_MS || 0);  // a slow init, when asked
while (Date.now() < busyUntil);
const table = [];
for (let i = 0; i < 2000; ++i) table.push(i * i);
const marker = crypto.randomBytes(8).toString('hex');  // drawn at init: every restore has it

exports.handler = async (event, context) => {
  globalThis.calls = (globalThis.calls || 0) + 1;
  const tmp = fs.readdirSync('/tmp');
  fs.writeFileSync('/tmp/seen', 'x');
  return {
    value: event.key === undefined ? null : event.key * 2,
    entries: table.length,
    calls: globalThis.calls,
    marker,
    tmp,
    request_id: context.awsRequestId,
    function_name: context.functionName,
    memory_limit_in_mb: context.memoryLimitInMB,
    cwd: process.cwd(),
    env: process.env.FORKLET_SNAPSHOT,
    random: Math.random(),
    uuid: crypto.randomUUID(),
    bytes: crypto.randomBytes(16).toString('hex'),
  };
};
