// forklet's Node.js runner: an instance's life inside its sandbox, as AWS Lambda's Node runtime
// runs a handler (its async and callback forms, its context, its error shapes and log lines).
//
// Speaks the channel protocol of zygote/channel.h on fd 3: frames of a 12-byte header
// (type, meta_len, payload_len; little-endian u32), JSON metadata, raw payload. It reads with
// blocking fs.readSync: between invocations the event loop is frozen, as Lambda freezes an idle
// instance, and a frame costs no event-loop round trip.
//
// It tells the daemon when Node has booted (BOOTED), then waits for INIT. A stem cell (a
// pre-booted instance, runtime/core/stem_cells.h) waits there with an empty /var/task until the
// daemon has mounted a function's code; a cold start finds INIT already queued.
'use strict';

const fs = require('fs');

const CHANNEL_FD = 3;
const LOG_FD = 1;
const SETUP = 1, INIT = 2, READY = 3, INIT_ERROR = 4, INVOKE = 5, RESULT = 6, RESTORED = 7, BOOTED = 8;
const TASK_ROOT = '/var/task';

// --- the channel -------------------------------------------------------------------------------

function readExact(n) {
  const buf = Buffer.allocUnsafe(n);
  let have = 0;
  while (have < n) {
    const got = fs.readSync(CHANNEL_FD, buf, have, n - have, null);
    if (got === 0) return null;  // the daemon closed the channel: the instance ends
    have += got;
  }
  return buf;
}

function readFrame() {
  const header = readExact(12);
  if (header === null) return null;
  const type = header.readUInt32LE(0), metaLen = header.readUInt32LE(4);
  const payloadLen = header.readUInt32LE(8);
  const meta = metaLen ? readExact(metaLen) : Buffer.alloc(0);
  const payload = payloadLen ? readExact(payloadLen) : Buffer.alloc(0);
  if (meta === null || payload === null) return null;
  return { type, meta: metaLen ? JSON.parse(meta.toString('utf8')) : {}, payload };
}

function writeFrame(type, meta, payload) {
  const m = Buffer.from(JSON.stringify(meta), 'utf8');
  const p = payload === undefined ? Buffer.alloc(0) : Buffer.from(payload, 'utf8');
  const header = Buffer.allocUnsafe(12);
  header.writeUInt32LE(type, 0);
  header.writeUInt32LE(m.length, 4);
  header.writeUInt32LE(p.length, 8);
  const all = Buffer.concat([header, m, p]);
  for (let off = 0; off < all.length;) off += fs.writeSync(CHANNEL_FD, all, off, all.length - off);
}

const path = require('path');
const util = require('util');

// --- logs: Lambda's line format, written straight to the log pipe --------------------------------

let currentRequestId = 'undefined';
let quiet = false;  // while warming up

function logLine(level, args) {
  if (quiet) return;
  const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}\n`;
  try {
    fs.writeSync(LOG_FD, line);
  } catch (_) {
    // The daemon is gone or the pipe broke: the instance's channel tells it soon enough.
  }
}

function patchConsole() {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG' };
  for (const [method, level] of Object.entries(levels)) console[method] = (...args) => logLine(level, args);
  console.trace = (...args) => {
    const err = { name: 'Trace', message: util.format(...args) };
    Error.captureStackTrace(err, console.trace);
    logLine('TRACE', [err.stack]);
  };
}

// --- errors in the shapes of Lambda's Node runtime ----------------------------------------------

function isError(e) {
  return util.types.isNativeError(e) || (e !== null && typeof e === 'object' && typeof e.name === 'string' &&
                                         typeof e.message === 'string' && typeof e.stack === 'string');
}

function errorBody(e) {
  try {
    if (isError(e)) return { errorType: e.name, errorMessage: e.message, trace: e.stack.split('\n') };
    return { errorType: typeof e, errorMessage: String(e), trace: [] };
  } catch (_) {
    return { errorType: 'handled',
             errorMessage: 'callback called with Error argument, but there was a problem while ' +
                           'retrieving one or more of its message, name, and stack' };
  }
}

class RuntimeError extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = type;
    if (cause && typeof cause.stack === 'string') this.stack = `${type}: ${message}\n${cause.stack}`;
  }
}

// --- loading the handler, as Lambda resolves "dir/module.fn.nested" -----------------------------

async function importIfExists(file) {
  return fs.existsSync(file) ? import(file) : undefined;
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

function typeModule(root, modulePath) {
  // The nearest package.json up to the task root decides whether .js is an ES module.
  for (let dir = path.dirname(modulePath); dir.startsWith(root); dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch (e) {
      if (e.code !== 'ENOENT') return false;
    }
    if (dir === root) break;
  }
  return false;
}

async function loadModule(root, moduleRoot, moduleName) {
  const base = path.resolve(root, moduleRoot, moduleName);
  const bare = requireIfExists(base);
  if (bare) return bare;
  const esm = typeModule(root, base);
  if (!esm) {
    const js = requireIfExists(base + '.js');
    if (js) return js;
  }
  const loaded = (esm && (await importIfExists(base + '.js'))) || (await importIfExists(base + '.mjs')) ||
                 requireIfExists(base + '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(moduleName, { paths: [root, path.resolve(root, moduleRoot)] }));
}

async function loadHandler(fullHandler, root = TASK_ROOT) {
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.length - handlerString.length);
  const match = /^([^.]*)\.(.*)$/.exec(handlerString);
  if (!match || fullHandler.includes('..'))
    throw new RuntimeError('Runtime.MalformedHandlerName', 'Bad handler');
  const [, moduleName, handlerPath] = match;
  let mod;
  try {
    mod = await loadModule(root, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new RuntimeError('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}`, e);
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND'))
      throw new RuntimeError('Runtime.ImportModuleError', `Error: ${e.message}`, e);
    throw e;
  }
  let fn = mod;
  for (const part of handlerPath.split('.')) fn = fn == null ? undefined : fn[part];
  if (fn === undefined && mod && mod.default && typeof mod.default === 'object') {
    fn = mod.default;  // a CommonJS module imported as ESM, or an ESM default export object
    for (const part of handlerPath.split('.')) fn = fn == null ? undefined : fn[part];
  }
  if (fn === undefined) throw new RuntimeError('Runtime.HandlerNotFound', `${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw new RuntimeError('Runtime.HandlerNotFound', `${fullHandler} is not a function`);
  return fn;
}

// --- invocations ----------------------------------------------------------------------------------

let init = null;
let current = null;  // the invocation in flight: {requestId, done, t0, waitForEmptyLoop, pending, report}

function elapsedUs(t0) {
  return Number((process.hrtime.bigint() - t0) / 1000n);
}

// Reports the invocation's outcome once; later calls (a second callback, a late promise) are
// logged and dropped, as on Lambda.
function finish(inv, ok, value) {
  if (inv.done) {
    console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
    return;
  }
  inv.done = true;
  let body;
  if (ok) {
    try {
      body = JSON.stringify(value === undefined ? null : value);
      if (body === undefined) body = 'null';  // a function or a symbol
    } catch (e) {
      ok = false;
      value = new Error('Unable to stringify response body');
    }
  }
  if (!ok) {
    const err = errorBody(value);
    logLine('ERROR', ['Invoke Error', '\t' + JSON.stringify({ ...err, stack: err.trace })]);
    body = JSON.stringify(err);
  }
  if (current === inv) current = null;
  inv.report(ok, elapsedUs(inv.t0), body);
}

// The callback form: with callbackWaitsForEmptyEventLoop (the default) a success is reported
// when the event loop has nothing left to do, which Node signals with 'beforeExit'.
process.on('beforeExit', () => {
  const inv = current;
  if (!inv || inv.done) return;
  if (inv.pending) {
    const [ok, value] = inv.pending;
    finish(inv, ok, value);
  } else {
    // Nothing left that could ever report (no callback, a promise that cannot settle): Lambda
    // answers null.
    finish(inv, true, null);
  }
});

function onUncaught(kind) {
  return (e) => {
    const inv = current;
    if (kind === 'Runtime.UnhandledPromiseRejection' && !isError(e))
      e = new RuntimeError(kind, String(e));
    if (inv && !inv.done) {
      finish(inv, false, e);
    } else {
      logLine('ERROR', [kind === 'uncaughtException' ? 'Uncaught Exception' : 'Unhandled Promise Rejection',
                        '\t' + JSON.stringify(errorBody(e))]);
    }
  };
}
process.on('uncaughtException', onUncaught('uncaughtException'));
process.on('unhandledRejection', onUncaught('Runtime.UnhandledPromiseRejection'));

function makeContext(inv, meta) {
  const deadline = Number(meta.deadline_ms);
  const context = {
    awsRequestId: inv.requestId,
    functionName: init.function,
    functionVersion: init.version || '$LATEST',
    invokedFunctionArn: meta.arn || init.arn,  // meta.arn: invoked through an alias
    memoryLimitInMB: String(init.memory_mb),
    logGroupName: init.log_group || '/aws/lambda/' + init.function,
    logStreamName: init.log_stream || '',
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    succeed: (result) => finish(inv, true, result),
    fail: (err) => finish(inv, false, err == null ? 'handled' : err),
    done: (err, result) => (err == null ? finish(inv, true, result) : finish(inv, false, err)),
  };
  Object.defineProperty(context, 'callbackWaitsForEmptyEventLoop', {
    enumerable: true,
    get: () => inv.waitForEmptyLoop,
    set: (v) => { inv.waitForEmptyLoop = Boolean(v); },
  });
  return context;
}

// Runs handler on one event; report(ok, handler_us, body) gets its outcome once.
function invoke(handler, meta, payload, report) {
  const inv = { requestId: String(meta.request_id), done: false, t0: process.hrtime.bigint(),
                waitForEmptyLoop: true, pending: null, report };
  current = inv;
  currentRequestId = inv.requestId;
  const callback = (err, result) => {
    if (inv.done || inv.pending) return;
    if (err != null) return finish(inv, false, err);
    if (!inv.waitForEmptyLoop) return finish(inv, true, result);
    inv.pending = [true, result];  // reported by 'beforeExit'
  };
  try {
    const event = payload.length ? JSON.parse(payload.toString('utf8')) : {};
    const result = handler(event, makeContext(inv, meta), callback);
    if (result && typeof result.then === 'function') {
      result.then((value) => finish(inv, true, value), (err) => finish(inv, false, err));
    }
  } catch (e) {
    finish(inv, false, e);
  }
}

// This process was restored from a snapshot taken after init (runtime/snapshot): every copy of it
// starts with the same memory. The runner keeps nothing per copy; what it cannot renew is
// V8's Math.random state and OpenSSL's generator (crypto.randomBytes, randomUUID): copies of one
// snapshot draw the same values, which is why the daemon restores Node only for functions that
// ask for it (FORKLET_SNAPSHOT=on; docs/snapshots.md).
function afterRestore() {
  const t0 = process.hrtime.bigint();
  writeFrame(READY, { init_us: 0, restore_us: elapsedUs(t0) });
}

function serve(handler) {
  const report = (ok, handlerUs, body) => {
    writeFrame(RESULT, { ok, handler_us: handlerUs }, body);
    setImmediate(next);
  };
  const next = () => {
    const frame = readFrame();  // blocks: the instance is idle until the daemon sends the next one
    if (frame === null) process.exit(0);
    if (frame.type === RESTORED) {
      afterRestore();
      return setImmediate(next);
    }
    if (frame.type !== INVOKE) process.exit(2);
    invoke(handler, frame.meta, frame.payload, report);
  };
  setImmediate(next);
}

// V8 compiles lazily: the first call through the module loader and the invocation path cost a
// fresh Node 1-2 ms. A stem cell pays that while it boots, with forklet_warmup.js, not its first
// function.
async function warmUp() {
  quiet = true;
  init = { function: 'forklet-warmup', arn: '', memory_mb: 0 };
  const handler = await loadHandler('forklet_warmup.handler', __dirname);
  delete require.cache[path.join(__dirname, 'forklet_warmup.js')];
  const meta = { request_id: 'warmup', deadline_ms: Date.now() + 1000 };
  for (const payload of ['{"warm": true}', '{"fail": true}']) {
    await new Promise((resolve) => invoke(handler, meta, Buffer.from(payload), resolve));
  }
  util.format('%s %j', 'warm', {});
  init = null;
  currentRequestId = 'undefined';
  quiet = false;
}

// Only what changes: a write to TZ makes V8 and ICU reload the time zone (milliseconds), and the
// boot environment has the same TZ as the function's.
function applyEnvironment(env) {
  env = env || {};
  for (const key of Object.keys(process.env)) if (!Object.hasOwn(env, key)) delete process.env[key];
  for (const [key, value] of Object.entries(env)) if (process.env[key] !== String(value)) process.env[key] = String(value);
}

async function main() {
  await warmUp();
  // Booted: Node's own start-up and the warm-up; the daemon times it from the fork.
  writeFrame(BOOTED, { boot_us: Math.round(process.uptime() * 1e6) });
  const frame = readFrame();  // a stem cell waits here until it is given a function
  if (frame === null) process.exit(0);
  if (frame.type !== INIT) process.exit(2);
  const tEnv = process.hrtime.bigint();
  init = frame.meta;
  applyEnvironment(init.env);
  // NODE_PATH (layers at /opt, the runtime's modules) is read once at Node's start; the function's
  // comes now (a stem cell or a zygote's copy started before it was known).
  require('module').Module._initPaths();
  process.chdir(TASK_ROOT);  // the code is mounted now (a stem cell's /var/task was empty)
  patchConsole();
  const t0 = process.hrtime.bigint();
  const envUs = Number((t0 - tEnv) / 1000n);
  let handler;
  try {
    handler = await loadHandler(String(init.handler));
  } catch (e) {
    const err = errorBody(e);
    logLine('ERROR', ['Init Error', '\t' + JSON.stringify(err)]);
    writeFrame(INIT_ERROR, { errorType: err.errorType, errorMessage: err.errorMessage,
                             trace: err.trace || [], init_us: elapsedUs(t0) });
    process.exit(1);
  }
  writeFrame(READY, { init_us: elapsedUs(t0), env_us: envUs });
  serve(handler);
}

main().catch((e) => {
  // The channel broke (or the runner did): nothing can be reported; the daemon sees the exit.
  process.stderr.write(`forklet runner: ${e && e.stack ? e.stack : e}\n`);
  process.exit(2);
});
