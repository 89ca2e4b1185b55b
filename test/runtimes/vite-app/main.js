// A minimal app as a user writes it: named imports from the installed package, bundled by Vite.
import { ACTIVATIONS, AttentionError, BACKENDS, createAttention, isBackendSupported } from 'wasm-attention';
import { describeError, runSmoke } from '../smoke.mjs';

const params = new URLSearchParams(location.search);
const expectBackend = params.get('expect') ?? 'wasm-relaxed-simd';
// threads=1: a 2-thread engine must run (its worker bundled by Vite); threads=0: it must be unavailable.
const expectThreads = { 1: true, 0: false }[params.get('threads')];
runSmoke({ ACTIVATIONS, AttentionError, BACKENDS, createAttention, isBackendSupported }, { expectBackend, expectThreads, label: `${params.get('label') ?? navigator.userAgent}, vite bundle` })
  .then((result) => {
    document.getElementById('out').textContent = JSON.stringify(result, null, 2);
    window.__smoke = { ok: true, result };
  })
  .catch((error) => {
    const text = describeError(error);
    document.getElementById('out').textContent = text;
    window.__smoke = { ok: false, error: text };
  });
