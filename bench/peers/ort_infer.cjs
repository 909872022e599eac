#!/usr/bin/env node
// ONNX Runtime (npm onnxruntime-node, CPU execution provider) peer for the vitopt runtime: loads an
// ONNX export of the same model (bench/peers/torch_infer.py --export-onnx) and prints one JSON line
// per batch with p50/p90/p99 latency and images/s at a fixed intra-op thread count.
// Usage: node bench/peers/ort_infer.cjs MODEL.onnx BATCHES THREADS [RUNS]
//   (ORT_MODULE=/path/to/node_modules/onnxruntime-node when it is not installed next to this file)
const ort = require(process.env.ORT_MODULE || 'onnxruntime-node');

async function main() {
  const [model, batches = '1', threads = '2', runsArg = '20'] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential'});
  const inputName = session.inputNames[0];
  for (const b of batches.split(',').map(Number)) {
    const runs = b > 1 ? Math.max(3, Math.floor(Number(runsArg) / 4)) : Number(runsArg);
    // Input shape (B, C, H, W): C/H/W from the peer's file name convention is brittle; read it.
    const shape = JSON.parse(process.env.ORT_INPUT_SHAPE || '[3,224,224]');
    const n = b * shape[0] * shape[1] * shape[2];
    const data = new Float32Array(n);
    for (let i = 0; i < n; ++i) data[i] = Math.sin(i) * 0.5;
    const feeds = {[inputName]: new ort.Tensor('float32', data, [b, ...shape])};
    for (let i = 0; i < 3; ++i) await session.run(feeds);
    const ms = [];
    for (let i = 0; i < runs; ++i) {
      const t = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    ms.sort((x, y) => x - y);
    const pct = (p) => { const pos = p * (ms.length - 1), lo = Math.floor(pos), hi = Math.min(lo + 1, ms.length - 1);
                         return ms[lo] + (ms[hi] - ms[lo]) * (pos - lo); };
    console.log(JSON.stringify({engine: 'onnxruntime', model, batch: b, threads: Number(threads),
                                p50_ms: pct(0.5), p90_ms: pct(0.9), p99_ms: pct(0.99),
                                images_per_s: 1000 * b / pct(0.5)}));
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
