// The Python zygote's binding to libforklet_zygote.so, as a C extension: importing ctypes for it
// cost ~2.5 ms of every Python zygote's boot (cold starts, spares), and the child's post-fork
// reset goes straight to PyOS_AfterFork_Child.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zygote/zygote_server.h"

namespace {

PyObject* g_idle_hook = nullptr;  // the zygote's _idle; called with the GIL held (serve keeps it)

int CallIdleHook() {
  if (!g_idle_hook) return 0;
  PyObject* r = PyObject_CallNoArgs(g_idle_hook);
  if (!r) {  // _idle catches its own errors; anything else: stop calling it
    PyErr_Clear();
    return 0;
  }
  int more = PyObject_IsTrue(r);
  Py_DECREF(r);
  return more > 0 ? 1 : 0;
}

PyObject* SetIdleHook(PyObject*, PyObject* hook) {
  if (!PyCallable_Check(hook)) {
    PyErr_SetString(PyExc_TypeError, "the idle hook must be callable");
    return nullptr;
  }
  Py_XDECREF(g_idle_hook);
  Py_INCREF(hook);
  g_idle_hook = hook;
  forklet_zygote_set_idle_hook(CallIdleHook);
  Py_RETURN_NONE;
}

// serve(control_fd, boot_us): -1 in the zygote once the daemon has gone, 0 in each forked child.
PyObject* Serve(PyObject*, PyObject* args) {
  int fd = -1;
  unsigned int boot_us = 0;
  if (!PyArg_ParseTuple(args, "iI", &fd, &boot_us)) return nullptr;
  return PyLong_FromLong(forklet_zygote_serve(fd, boot_us));
}

PyObject* ChildExecs(PyObject*, PyObject*) { return PyBool_FromLong(forklet_zygote_child_execs()); }

// In a forked child: Python's own post-fork reset (locks, thread state, at-fork hooks such as
// random's reseed), as os.fork would have done.
PyObject* AfterForkChild(PyObject*, PyObject*) {
  PyOS_AfterFork_Child();
  Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"set_idle_hook", SetIdleHook, METH_O, "Called while no fork request waits, until it returns 0."},
    {"serve", Serve, METH_VARARGS, "Serves fork requests; returns 0 in each child, -1 when the daemon has gone."},
    {"child_execs", ChildExecs, METH_NOARGS, "In a child: whether it must exec a fresh runner."},
    {"after_fork_child", AfterForkChild, METH_NOARGS, "PyOS_AfterFork_Child()."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "forklet_zygote_py", nullptr, -1, kMethods,
                       nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_forklet_zygote_py(void) { return PyModule_Create(&kModule); }
