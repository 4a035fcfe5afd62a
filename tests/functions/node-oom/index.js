// Touches event.mb MB outside V8's heap (Buffers are zero-filled by alloc).
exports.handler = async (event) => {
  const hog = [];
  for (let i = 0; i < (event.mb || 1024); i++) hog.push(Buffer.alloc(1024 * 1024, 1));
  return { allocated_mb: hog.length };
};
