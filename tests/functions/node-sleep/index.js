exports.handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.ms || 10000));
  return { slept_ms: event.ms || 10000 };
};
