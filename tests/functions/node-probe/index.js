// Probes the sandbox from inside Node: identity, capabilities, seccomp, files and the /tmp of
// this instance (a marker per request).
const fs = require('fs');

function statusField(name) {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(name + ':'));
  return line ? line.split(':')[1].trim() : null;
}

function canWrite(path) {
  try {
    fs.writeFileSync(path, 'x');
    return true;
  } catch (_) {
    return false;
  }
}

exports.handler = async (event, context) => {
  fs.writeFileSync('/tmp/marker-' + context.functionName, 'mine');
  return {
    uid: process.getuid(),
    gid: process.getgid(),
    CapEff: statusField('CapEff'),
    CapBnd: statusField('CapBnd'),
    NoNewPrivs: statusField('NoNewPrivs'),
    Seccomp: statusField('Seccomp'),
    pids_visible: fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).sort((a, b) => a - b),
    write_var_task: canWrite('/var/task/owned'),
    write_runtime: canWrite('/var/runtime/owned'),
    write_tmp: canWrite('/tmp/owned'),
    var_task: fs.readdirSync('/var/task').sort(),
    tmp_files: fs.readdirSync('/tmp').sort(),
    function_name: context.functionName,
  };
};
