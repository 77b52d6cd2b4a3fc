/* One row times a bfloat16 matrix with AVX512_BF16's dot-product instruction (vdpbf16ps).
 *
 * Generation multiplies one row per token by every matrix of the model, so it is bound by how
 * fast the matrices stream from memory. PyTorch's one-row bfloat16 products (torch.mv, and
 * oneDNN's) widen each element to float32 before multiplying and run no faster than float32,
 * which reads twice the bytes; vdpbf16ps multiplies 32 bfloat16 pairs and adds them into 16
 * float32 sums in one instruction, so the bytes saved become time saved.
 *
 * y[o] = bias[o] + sum_i W[o, i] * x[i]: W is [out, in], row-major (nn.Linear's layout), x and
 * bias bfloat16, the sums float32, y float32 or bfloat16 (rounded to nearest even, as PyTorch
 * rounds). Four rows at a time share each load of x. Built by gpt_core/bf16_matvec.py.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static inline __m512bh load32(const uint16_t *p) {
    return (__m512bh)_mm512_loadu_si512((const void *)p);
}

static inline __m512bh load_tail(const uint16_t *p, __mmask32 m) {
    return (__m512bh)_mm512_maskz_loadu_epi16(m, (const void *)p);
}

static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline void store(void *y, int y_bf16, int64_t o, float v) {
    if (y_bf16) ((uint16_t *)y)[o] = to_bf16(v);
    else ((float *)y)[o] = v;
}

void bf16_matvec(const uint16_t *W, const uint16_t *x, const uint16_t *bias, void *y,
                 int64_t out, int64_t in, int y_bf16, int threads) {
    const int64_t full = in / 32 * 32;
    const __mmask32 tail = (__mmask32)((1ull << (in - full)) - 1);
    const int64_t quads = out / 4;

    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t q = 0; q < quads; q++) {
        const int64_t o = q * 4;
        const uint16_t *w0 = W + o * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int64_t i = 0; i < full; i += 32) {
            const __m512bh xv = load32(x + i);
            a0 = _mm512_dpbf16_ps(a0, load32(w0 + i), xv);
            a1 = _mm512_dpbf16_ps(a1, load32(w1 + i), xv);
            a2 = _mm512_dpbf16_ps(a2, load32(w2 + i), xv);
            a3 = _mm512_dpbf16_ps(a3, load32(w3 + i), xv);
        }
        if (tail) {
            const __m512bh xv = load_tail(x + full, tail);
            a0 = _mm512_dpbf16_ps(a0, load_tail(w0 + full, tail), xv);
            a1 = _mm512_dpbf16_ps(a1, load_tail(w1 + full, tail), xv);
            a2 = _mm512_dpbf16_ps(a2, load_tail(w2 + full, tail), xv);
            a3 = _mm512_dpbf16_ps(a3, load_tail(w3 + full, tail), xv);
        }
        store(y, y_bf16, o + 0, (bias ? from_bf16(bias[o + 0]) : 0.0f) + _mm512_reduce_add_ps(a0));
        store(y, y_bf16, o + 1, (bias ? from_bf16(bias[o + 1]) : 0.0f) + _mm512_reduce_add_ps(a1));
        store(y, y_bf16, o + 2, (bias ? from_bf16(bias[o + 2]) : 0.0f) + _mm512_reduce_add_ps(a2));
        store(y, y_bf16, o + 3, (bias ? from_bf16(bias[o + 3]) : 0.0f) + _mm512_reduce_add_ps(a3));
    }
    for (int64_t o = quads * 4; o < out; o++) { /* the last out % 4 rows */
        const uint16_t *w = W + o * in;
        __m512 a = _mm512_setzero_ps();
        for (int64_t i = 0; i < full; i += 32) a = _mm512_dpbf16_ps(a, load32(w + i), load32(x + i));
        if (tail) a = _mm512_dpbf16_ps(a, load_tail(w + full, tail), load_tail(x + full, tail));
        store(y, y_bf16, o, (bias ? from_bf16(bias[o]) : 0.0f) + _mm512_reduce_add_ps(a));
    }
}
