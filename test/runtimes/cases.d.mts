// Types of cases.mjs (a plain ES module, so the smoke suite runs it unchanged in every runtime).
import type { LinearRefOptions, RefOptions } from './reference.mjs';

export * from './reference.mjs';

export function random(n: number, seed: number, amplitude?: number): Float32Array;

export const MICRO_TILE: { readonly rows: number; readonly keys: number };

export interface Blocks { readonly queries: number; readonly keys: number }
export interface TileEdges {
  /** Query counts around the micro-tile, the query block and 2 query blocks (ascending, ≥ 1). */
  queries: number[];
  /** Key counts around the key panel, the key block and 2 key blocks (ascending, ≥ 1). */
  keys: number[];
  /** Every query and key count above (ascending). */
  all: number[];
  /** Decode blocks (fewer than 4 query rows): keys per block and the key counts around it. */
  decode: { rows: number; block: number; keys: number[] }[];
}
export function tileEdges(blocks: Blocks): TileEdges;
export function allTileEdges(blockings: readonly Blocks[]): TileEdges;
export function edgePairs(edges: TileEdges): [seqQ: number, seqK: number][];

type Shape = Pick<RefOptions, 'batch' | 'heads' | 'seqQ' | 'seqK' | 'headDim' | 'kvHeads' | 'headDimV'>;
export function inputs(o: Shape, seed: number): { q: Float32Array; k: Float32Array; v: Float32Array };

export interface Case { name: string; o: RefOptions; q: Float32Array; k: Float32Array; v: Float32Array }
export function cases(activations: readonly string[]): Case[];
export function threadCases(activations: readonly string[]): Case[];
export interface LinearCase { name: string; o: LinearRefOptions; q: Float32Array; k: Float32Array; v: Float32Array; stream?: boolean }
export function linearCases(): LinearCase[];

export interface BenchShape extends RefOptions { id: string; label: string }
export const SHAPES: BenchShape[];
export function flops(s: Shape): number;
export function inputsFor(s: Shape, seed?: number): { q: Float32Array; k: Float32Array; v: Float32Array };
export function optionsOf(s: BenchShape): RefOptions;
