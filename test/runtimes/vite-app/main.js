// A minimal app as a user writes it: named imports from the installed package, bundled by Vite.
import { ACTIVATIONS, AttentionError, BACKENDS, createAttention, isBackendSupported } from 'wasm-attention';
import { runSmoke } from '../smoke.mjs';

const expectBackend = new URLSearchParams(location.search).get('expect') ?? 'wasm-relaxed-simd';
runSmoke({ ACTIVATIONS, AttentionError, BACKENDS, createAttention, isBackendSupported }, { expectBackend, label: 'vite bundle' })
  .then((result) => {
    document.getElementById('out').textContent = JSON.stringify(result, null, 2);
    window.__smoke = { ok: true, result };
  })
  .catch((error) => {
    document.getElementById('out').textContent = String(error);
    window.__smoke = { ok: false, error: String(error && error.stack || error) };
  });
