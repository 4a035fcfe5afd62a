// The runtimes forklet-zygote serves: each runs in a sandboxed child, after the fork.
// A mode owns the instance from then on: it reads INIT on the channel (fd 3), reports READY or
// INIT_ERROR, serves INVOKE frames until the channel closes, and returns the exit status.
#pragma once

namespace forklet::runner {

int RunNative();    // lang-runners/native: a shared object with the C ABI of forklet.h
int RunProvided();  // lang-runners/provided: /var/task/bootstrap speaking the Lambda Runtime API
int RunNodejs();    // lang-runners/nodejs
int RunPython();    // lang-runners/python: a cold start's fresh interpreter (python_mode.cc)
void SetPythonInterpreter(const char* path);  // RunPython's interpreter (default /usr/bin/python3)

}  // namespace forklet::runner
