/* What the C kernels share: libmvec's vector expf, a vector of floats at the build's
 * width with the operations they use, and a register-tiled small product.
 * Every file is built with -march=native (native.py); SER_SIMD says what that gave:
 * 512 (AVX-512), 256 (AVX2 with FMA) or 0, where the kernels are not used. */
#ifndef SER_KERNELS_H
#define SER_KERNELS_H

#include <stddef.h>
#if defined(__AVX512F__)
#define SER_SIMD 512
#elif defined(__AVX2__) && defined(__FMA__)
#define SER_SIMD 256
#else
#define SER_SIMD 0
#endif
#if SER_SIMD
#include <immintrin.h>
#endif

#define ROWS 4 /* rows (dialogs, queries, keys) in one register tile */

/* libmvec's vector expf (glibc >= 2.22) wherever the compiler vectorises a loop. */
#pragma omp declare simd notinbranch
extern float expf(float);

/* One vector of LANES floats, at the width SER_SIMD says, and the few operations the
 * kernels use; a `vmask` selects the lanes below a count (masked loads read 0 elsewhere
 * and never touch memory there). */
#if SER_SIMD == 512
#define LANES 16
typedef __m512 vec;
typedef __mmask16 vmask;
__m512 _ZGVeN16v_expf(__m512 x); /* libmvec */

static inline vmask vlanes(int n) {
  return n >= 16 ? (vmask)0xFFFF : n <= 0 ? (vmask)0 : (vmask)((1u << n) - 1u);
}
static inline vec vload(vmask m, const float *p) { return _mm512_maskz_loadu_ps(m, p); }
static inline void vstore(vmask m, float *p, vec x) { _mm512_mask_storeu_ps(p, m, x); }
static inline void vstore_all(float *p, vec x) { _mm512_storeu_ps(p, x); }
static inline vec vset1(float x) { return _mm512_set1_ps(x); }
static inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline vec vmul(vec a, vec b) { return _mm512_mul_ps(a, b); }
static inline vec vadd(vec a, vec b) { return _mm512_add_ps(a, b); }
static inline vec vsub(vec a, vec b) { return _mm512_sub_ps(a, b); }
static inline vec vmax(vec a, vec b) { return _mm512_max_ps(a, b); }
static inline vec vselect(vmask m, vec x, vec other) { return _mm512_mask_mov_ps(other, m, x); }
static inline vec vexp(vec x) { return _ZGVeN16v_expf(x); }
static inline float vreduce_max(vec x) { return _mm512_reduce_max_ps(x); }
static inline float vreduce_add(vec x) { return _mm512_reduce_add_ps(x); }

#elif SER_SIMD == 256
#define LANES 8
typedef __m256 vec;
typedef __m256i vmask;
__m256 _ZGVdN8v_expf(__m256 x); /* libmvec */

static inline vmask vlanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vec vload(vmask m, const float *p) { return _mm256_maskload_ps(p, m); }
static inline void vstore(vmask m, float *p, vec x) { _mm256_maskstore_ps(p, m, x); }
static inline void vstore_all(float *p, vec x) { _mm256_storeu_ps(p, x); }
static inline vec vset1(float x) { return _mm256_set1_ps(x); }
static inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline vec vmul(vec a, vec b) { return _mm256_mul_ps(a, b); }
static inline vec vadd(vec a, vec b) { return _mm256_add_ps(a, b); }
static inline vec vsub(vec a, vec b) { return _mm256_sub_ps(a, b); }
static inline vec vmax(vec a, vec b) { return _mm256_max_ps(a, b); }
static inline vec vselect(vmask m, vec x, vec other) {
  return _mm256_blendv_ps(other, x, _mm256_castsi256_ps(m));
}
static inline vec vexp(vec x) { return _ZGVdN8v_expf(x); }
static inline float vreduce_max(vec x) {
  const __m128 h = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  const __m128 q = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(q, _mm_shuffle_ps(q, q, 1)));
}
static inline float vreduce_add(vec x) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}
#endif

#if SER_SIMD
/* out[r][0:cols] = bias + sum_i in[r][i * step] * w[i * ldw + 0:cols] for r < ROWS (bias
 * may be NULL; out rows `ld` apart, ld >= cols rounded up to 32; `step` > 1 reads a
 * column of a row-major matrix, so no transposed copy is needed). Columns go two vectors
 * at a time: 2 x ROWS accumulators stay in registers over the sum. */
static inline void tile_product_strided(int n_in, int cols, const float *const *in, size_t step,
                                        const float *bias, const float *w, size_t ldw,
                                        float *out, int ld) {
  for (int c = 0; c < cols; c += 2 * LANES) {
    const vmask m0 = vlanes(cols - c), m1 = vlanes(cols - c - LANES);
    vec a[ROWS][2];
    const vec b0 = bias ? vload(m0, bias + c) : vset1(0.0f);
    const vec b1 = bias ? vload(m1, bias + c + LANES) : vset1(0.0f);
    for (int r = 0; r < ROWS; r++) {
      a[r][0] = b0;
      a[r][1] = b1;
    }
    for (int i = 0; i < n_in; i++) {
      const vec w0 = vload(m0, w + (size_t)i * ldw + c);
      const vec w1 = vload(m1, w + (size_t)i * ldw + c + LANES);
      for (int r = 0; r < ROWS; r++) {
        const vec x = vset1(in[r][i * step]);
        a[r][0] = vfma(x, w0, a[r][0]);
        a[r][1] = vfma(x, w1, a[r][1]);
      }
    }
    for (int r = 0; r < ROWS; r++) {
      vstore_all(out + (size_t)r * ld + c, a[r][0]);
      vstore_all(out + (size_t)r * ld + c + LANES, a[r][1]);
    }
  }
}

/* tile_product_strided on rows (step 1). */
static inline void tile_product(int n_in, int cols, const float *const *in, const float *bias,
                                const float *w, size_t ldw, float *out, int ld) {
  tile_product_strided(n_in, cols, in, 1, bias, w, ldw, out, ld);
}
#endif

#endif
