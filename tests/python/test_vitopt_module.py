#!/usr/bin/python3
"""The `vitopt` Python module against the `vitopt` command (Debian's /usr/bin/python3, NumPy).

Usage: /usr/bin/python3 test_vitopt_module.py BUILD_DIR   (PYTHONPATH must hold BUILD_DIR/python)
Writes a random-weight model with `vitopt init` and a few PNG files, then checks:
- predict(files) gives the probabilities `vitopt infer --engine runtime --json` prints (top 5);
- predict(array) on the same preprocessed pixels gives the same logits, owns no copy of them
  (the array adopts the C++ buffer), and batch results equal per-image results;
- config / classes / benchmark, and errors raised as vitopt.InputError with vitopt's messages.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

import vitopt

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("VITOPT_BUILD_DIR", "build/release")
VITOPT = os.path.join(BUILD, "bin", "vitopt")


def write_png(path, pixels):
    """8-bit greyscale PNG (H, W) by hand: signature, IHDR, one zlib IDAT, IEND."""
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class VitoptModuleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "m.safetensors")
        subprocess.run([VITOPT, "init", "--preset", "vit-tiny-test", "--seed", "3", "--out", cls.model,
                        "--quiet"], check=True)
        rng = np.random.default_rng(0)
        cls.images = []
        for i in range(3):
            path = os.path.join(cls.tmp.name, f"img{i}.png")
            write_png(path, rng.integers(0, 256, size=(28, 28), dtype=np.uint8))
            cls.images.append(path)
        cls.m = vitopt.Model(cls.model, threads=2)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_predict_files_matches_vitopt_infer(self):
        out = subprocess.run([VITOPT, "infer", "--model", self.model, "--engine", "runtime", "--json",
                              "--threads", "2"] + self.images, check=True, capture_output=True, text=True)
        want = json.loads(out.stdout)
        probs = softmax(self.m.predict(self.images))
        self.assertEqual(probs.shape, (3, self.m.num_classes))
        for i, rec in enumerate(want):
            for p in rec["top"]:
                self.assertAlmostEqual(float(probs[i, p["class"]]), p["probability"], places=5)
            self.assertEqual(int(np.argmax(probs[i])), rec["top"][0]["class"])

    def test_predict_array_same_logits_without_copy(self):
        files = self.m.predict(self.images)
        mean, std = self.m.config["preprocess"]["mean"][0], self.m.config["preprocess"]["std"][0]
        pixels = np.stack([self.read_png(p) for p in self.images]).astype(np.float32) / 255.0
        x = ((pixels - mean) / std)[:, None, :, :].astype(np.float32)
        logits = self.m.predict(x)
        np.testing.assert_allclose(logits, files, rtol=0, atol=1e-5)
        self.assertEqual(logits.dtype, np.float32)
        self.assertFalse(logits.flags.owndata)      # adopted C++ buffer, not a NumPy copy
        self.assertIsNotNone(logits.base)
        self.assertTrue(logits.flags.c_contiguous)
        one = self.m.predict(x[1:2])
        np.testing.assert_allclose(one[0], logits[1], rtol=0, atol=1e-5)
        # float64 input is converted, not refused
        np.testing.assert_allclose(self.m.predict(x.astype(np.float64)), logits, rtol=0, atol=0)

    @staticmethod
    def read_png(path):
        data = open(path, "rb").read()
        idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
        raw = zlib.decompress(idat)
        return np.frombuffer(raw, dtype=np.uint8).reshape(28, 29)[:, 1:]

    def test_config_classes_benchmark(self):
        c = self.m.config
        self.assertEqual((c["embed_dim"], c["depth"], c["patch_size"]), (32, 2, 7))
        self.assertEqual(self.m.input_shape, (1, 28, 28))
        self.assertIsInstance(self.m.classes, list)
        self.assertEqual(self.m.precision, "fp32")
        b = self.m.benchmark(batch=2, runs=3)
        self.assertEqual(b["batch"], 2)
        self.assertGreater(b["p50_ms"], 0)
        self.assertGreater(b["images_per_s"], 0)

    def test_merge_r_override_changes_the_computation(self):
        x = np.random.default_rng(3).standard_normal((2, 1, 28, 28)).astype(np.float32)
        merged = vitopt.Model(self.model, threads=2, merge_r="4")
        off = vitopt.Model(self.model, threads=2, merge_r="off")
        np.testing.assert_array_equal(off.predict(x), self.m.predict(x))
        self.assertFalse(np.array_equal(merged.predict(x), self.m.predict(x)))
        with self.assertRaises(vitopt.InputError):
            vitopt.Model(self.model, merge_r="lots")

    def test_errors_are_python_exceptions_with_vitopt_messages(self):
        missing = os.path.join(self.tmp.name, "missing.safetensors")
        with self.assertRaises(vitopt.InputError) as e:
            vitopt.Model(missing)
        self.assertIn(missing, str(e.exception))
        self.assertTrue(issubclass(vitopt.InputError, ValueError))
        with self.assertRaises(vitopt.InputError) as e:
            self.m.predict(np.zeros((2, 3, 28, 28), dtype=np.float32))
        self.assertIn("expected shape (N, 1, 28, 28)", str(e.exception))
        bad = os.path.join(self.tmp.name, "bad.safetensors")
        with open(bad, "wb") as f:
            f.write(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
        cli = subprocess.run([VITOPT, "infer", "--model", bad, self.images[0]], capture_output=True, text=True)
        self.assertEqual(cli.returncode, 2)
        with self.assertRaises(vitopt.InputError) as e:
            vitopt.Model(bad)
        self.assertIn(str(e.exception), cli.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
