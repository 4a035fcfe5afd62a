"""Starts forklet's Python zygote (forklet_zygote_main.py).

A script run as __main__ is compiled from source on every start (never from a .pyc): about
10 million instructions for the zygote's code, half of what a bare interpreter's start costs.
So this script stays this small, and the zygote's code is a module, imported from the bytecode
the build compiles beside it (lang-runners/CMakeLists.txt).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forklet_zygote_main  # noqa: E402

sys.path.pop(0)
sys.exit(forklet_zygote_main.main())
