// Not JavaScript: the module fails to load.
exports.handler = async (event) => {
  return {;
};
