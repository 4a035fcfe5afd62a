// The callback form. With callbackWaitsForEmptyEventLoop (the default) the result goes out when
// the timer has fired; event.no_wait turns that off.
let fired = 0;
exports.handler = (event, context, callback) => {
  if (event.no_wait) context.callbackWaitsForEmptyEventLoop = false;
  if (event.fail) return callback(new TypeError('callback failure'));
  if (event.string_error) return callback('plain string error');
  setTimeout(() => { fired += 1; }, 50);
  callback(null, { form: 'callback', fired_before: fired });
};
