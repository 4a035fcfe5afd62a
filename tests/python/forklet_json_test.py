"""forklet_json gives exactly what json.loads/json.dumps give (results, exception types and messages),
and importing it does not import the json package. Run: python3 -I -S forklet_json_test.py RUNNER_DIR
"""
import sys
import unittest

RUNNER_DIR = sys.argv.pop(1)
sys.path.insert(0, RUNNER_DIR)
import json  # noqa: E402
import subprocess  # noqa: E402

import forklet_json  # noqa: E402


def outcome(f, value):
    try:
        return ("ok", repr(f(value)))
    except Exception as e:  # noqa: BLE001
        return ("error", type(e).__name__, str(e))


class Loads(unittest.TestCase):
    CASES = [
        b"{}", b'  {"a": [1, 2.5, -3e400, 1e400, null, true, false, "\\u00e9x"]}\n ', '"x"',
        b"[NaN, Infinity, -Infinity]", b"1" * 10, b"\xef\xbb\xbf{}", "\ufeff{}", b'{"a":1} x',
        b"", b"   ", b"{", b'"\\ud800"', '{"\u00e9": "\U0001f600"}'.encode(),
        "[1]".encode("utf-16"), "[1]".encode("utf-16-le"), "[1]".encode("utf-16-be"),
        "[1]".encode("utf-32"), b"\xff\xff", b"\xc3", b"1" * 5000, b"[" * 100000,
        bytearray(b"[1,2]"), b'{"a":1,"a":2}', b"0.1", b"-0", b"1.0e5", b'"\x01"', b"12 ",
        b"\x00", b"1\x00", b"[1, 2,]", b"{'a': 1}", b'"a\\qb"', 3, None,
    ]

    def test_same_as_json(self):
        for case in self.CASES:
            with self.subTest(case=case[:40] if isinstance(case, (str, bytes, bytearray)) else case):
                self.assertEqual(outcome(json.loads, case), outcome(forklet_json.loads, case))

    def test_keys_are_not_shared_between_calls(self):
        a = forklet_json.loads(b'{"k": 1}')
        a["k"] = 2
        self.assertEqual(forklet_json.loads(b'{"k": 1}'), {"k": 1})


class Dumps(unittest.TestCase):
    def cases(self):
        rec = []
        rec.append(rec)
        loop = {}
        loop["d"] = loop

        class I(int):
            pass

        class F(float):
            pass

        class D(dict):
            pass

        return ["x\u00e9\ud800", {"a": [1, 2.5, float("inf"), float("nan"), None, True, False]},
                10 ** 100, {1: 2, 2.5: 3, None: 4, True: 5}, [()], {"a": object()}, {(1, 2): 3},
                3.0, -0.0, rec, loop, I(5), F(2.5), D(a=1), b"bytes", {1}, [[[]]] * 3]

    def test_same_as_json(self):
        for case in self.cases():
            with self.subTest(case=repr(case)[:40]):
                self.assertEqual(outcome(json.dumps, case), outcome(forklet_json.dumps, case))

    def test_an_error_leaves_the_next_call_unaffected(self):
        shared = [1]
        with self.assertRaises(TypeError):
            forklet_json.dumps([shared, object()])
        self.assertEqual(forklet_json.dumps([shared, shared]), "[[1], [1]]")


class Imports(unittest.TestCase):
    def test_the_runner_does_not_import_the_json_package(self):
        # What a zygote imports before its hello (and a cold start waits for).
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import forklet_instance; "
                "forklet_instance.forklet_json.loads(b'[1]'); "
                "print(sorted(m for m in ('json', 're', 'enum', 'importlib') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code, RUNNER_DIR],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out.strip(), "[]")


if __name__ == "__main__":
    unittest.main()
