// The async form: what the handler saw, echoed back.
exports.handler = async (event, context) => {
  console.log('hello called with', JSON.stringify(event));
  return {
    hello: event.name || 'world',
    event,
    function_name: context.functionName,
    memory_limit_in_mb: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
    request_id: context.awsRequestId,
    log_group: context.logGroupName,
    remaining_ms: context.getRemainingTimeInMillis(),
    waits_for_empty_loop: context.callbackWaitsForEmptyEventLoop,
    env_greeting: process.env.GREETING || null,
    env_handler: process.env._HANDLER,
    task_root: process.env.LAMBDA_TASK_ROOT,
    cwd: process.cwd(),
    dirname: __dirname,
    node: process.version,
    calls: (globalThis.calls = (globalThis.calls || 0) + 1),
  };
};
