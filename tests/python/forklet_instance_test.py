"""forklet_instance's handler loading: an instance forked ahead of demand finds and compiles its
handler's module while it waits (_precompile) and runs it only at INIT, and what a function sees
(its module, its init errors) is what a plain import gives. Run: python3 -I -S
forklet_instance_test.py RUNNER_DIR
"""
import os
import sys
import tempfile
import unittest

RUNNER_DIR = sys.argv.pop(1)
sys.path.insert(0, RUNNER_DIR)
import forklet_instance  # noqa: E402

SIDE_EFFECT = "import os\nos.environ['LOADS'] = str(int(os.environ.get('LOADS', '0')) + 1)\n"


class Precompile(unittest.TestCase):
    def setUp(self):
        self.task = tempfile.mkdtemp(prefix="forklet-task-")
        sys.path.insert(0, self.task)
        forklet_instance._precompiled = None
        os.environ.pop("LOADS", None)
        self.names = []

    def tearDown(self):
        sys.path.remove(self.task)
        for name in self.names:
            sys.modules.pop(name, None)
        forklet_instance._precompiled = None

    def module(self, name, source):
        self.names.append(name)
        with open(os.path.join(self.task, name + ".py"), "w") as f:
            f.write(source)

    def test_the_module_runs_at_init_not_when_it_is_compiled(self):
        self.module("fl_app1", SIDE_EFFECT + "def handler(e, c):\n    return e\n")
        forklet_instance._precompile("fl_app1.handler")
        self.assertIsNotNone(forklet_instance._precompiled)
        self.assertNotIn("LOADS", os.environ)  # compiled, not run
        self.assertNotIn("fl_app1", sys.modules)
        handler = forklet_instance._load_handler("fl_app1.handler")
        self.assertEqual(handler(5, None), 5)
        self.assertEqual(os.environ["LOADS"], "1")
        mod = sys.modules["fl_app1"]
        self.assertEqual(mod.__file__, os.path.join(self.task, "fl_app1.py"))
        self.assertEqual(mod.__spec__.name, "fl_app1")
        self.assertEqual(handler.__code__.co_filename, os.path.join(self.task, "fl_app1.py"))

    def test_a_syntax_error_is_the_init_error_a_plain_import_gives(self):
        self.module("fl_broken", "def handler(:\n")
        forklet_instance._precompile("fl_broken.handler")
        self.assertIsNone(forklet_instance._precompiled)
        with self.assertRaises(forklet_instance.InitError) as ahead:
            forklet_instance._load_handler("fl_broken.handler")
        forklet_instance._precompiled = None
        with self.assertRaises(forklet_instance.InitError) as plain:
            forklet_instance._load_handler("fl_broken.handler")
        self.assertEqual(ahead.exception.body["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(ahead.exception.body["errorMessage"], plain.exception.body["errorMessage"])
        self.assertIn("Unable to import module 'fl_broken'", ahead.exception.body["errorMessage"])

    def test_an_error_raised_by_the_module_comes_at_init(self):
        self.module("fl_raises", "raise RuntimeError('no config')\n")
        forklet_instance._precompile("fl_raises.handler")
        self.assertIsNotNone(forklet_instance._precompiled)
        with self.assertRaises(forklet_instance.InitError) as e:
            forklet_instance._load_handler("fl_raises.handler")
        self.assertEqual(e.exception.body["errorMessage"], "Unable to import module 'fl_raises': no config")
        self.assertNotIn("fl_raises", sys.modules)  # as after a failed import

    def test_a_missing_handler_name_is_reported_as_before(self):
        self.module("fl_nohandler", "x = 1\n")
        forklet_instance._precompile("fl_nohandler.main")
        with self.assertRaises(forklet_instance.InitError) as e:
            forklet_instance._load_handler("fl_nohandler.main")
        self.assertEqual(e.exception.body["errorType"], "Runtime.HandlerNotFound")

    def test_an_imported_name_and_a_dotted_name_are_left_to_the_import(self):
        # A module the zygote already imported is what an import returns: not a /var/task file.
        self.module("forklet_json", "raise SystemExit('must not run')\n")
        forklet_instance._precompile("forklet_json.loads")
        self.assertIsNone(forklet_instance._precompiled)
        self.names.remove("forklet_json")  # the runner's own module stays imported
        self.assertIs(forklet_instance._load_handler("forklet_json.loads"), sys.modules["forklet_json"].loads)
        # Finding a submodule would run its package's __init__: not done ahead.
        pkg = os.path.join(self.task, "fl_pkg")
        os.mkdir(pkg)
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write(SIDE_EFFECT)
        with open(os.path.join(pkg, "app.py"), "w") as f:
            f.write("def handler(e, c):\n    return 'pkg'\n")
        self.names += ["fl_pkg", "fl_pkg.app"]
        forklet_instance._precompile("fl_pkg/app.handler")
        self.assertIsNone(forklet_instance._precompiled)
        self.assertNotIn("LOADS", os.environ)
        self.assertEqual(forklet_instance._load_handler("fl_pkg/app.handler")(None, None), "pkg")

    def test_a_precompiled_module_is_used_only_for_its_own_name(self):
        self.module("fl_one", "def handler(e, c):\n    return 'one'\n")
        self.module("fl_two", "def handler(e, c):\n    return 'two'\n")
        forklet_instance._precompile("fl_one.handler")
        self.assertEqual(forklet_instance._load_handler("fl_two.handler")(None, None), "two")


if __name__ == "__main__":
    unittest.main()
