// The function forklet's Node runner loads and calls while it boots (forklet_runner.js warmUp),
// so that V8 has compiled the module loader and the invocation path before a real function needs
// them. It returns a value and throws, as functions do.
'use strict';

exports.handler = async (event, context) => {
  if (event.fail) throw new Error('warm-up error path');
  return { warm: event.warm, remaining: context.getRemainingTimeInMillis() > 0 };
};
