class CustomError extends Error {
  constructor(message) {
    super(message);
    this.name = 'CustomError';
  }
}
exports.handler = async (event) => {
  if (event.reject_string) return Promise.reject('rejected with a string');
  if (event.uncaught) {
    setTimeout(() => { throw new RangeError('thrown from a timer'); }, 1);
    return new Promise(() => {});
  }
  throw new CustomError('something went wrong: ' + event.why);
};
