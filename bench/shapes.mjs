// The benchmark shapes S1–S5, their FLOP count and deterministic inputs live in the one case list that vitest and
// the runtime smoke suite share (test/runtimes/cases.mjs); the benchmarks import them from here.
export { MODEL_SHAPES, SHAPES, flops, inputsFor, optionsOf } from '../test/runtimes/cases.mjs';
