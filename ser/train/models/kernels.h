/* What the C kernels share: libmvec's vector expf and a register-tiled small product.
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

/* libmvec's 16-lane expf (glibc >= 2.22) wherever the compiler vectorises a loop. */
#pragma omp declare simd notinbranch
extern float expf(float);

#if SER_SIMD == 512
/* libmvec's expf on 16 lanes, called directly where a loop is written in intrinsics. */
__m512 _ZGVeN16v_expf(__m512 x);

static inline __mmask16 lanes(int n) {
  return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* out[r][0:cols] = bias + sum_i in[r][i * step] * w[i * ldw + 0:cols] for r < ROWS (bias
 * may be NULL; out rows `ld` apart, ld >= cols rounded up to 32; `step` > 1 reads a
 * column of a row-major matrix, so no transposed copy is needed). 8 accumulators stay in
 * registers over the sum. */
static inline void tile_product_strided(int n_in, int cols, const float *const *in, size_t step,
                                        const float *bias, const float *w, size_t ldw,
                                        float *out, int ld) {
  for (int c = 0; c < cols; c += 32) {
    const __mmask16 m0 = lanes(cols - c), m1 = lanes(cols - c - 16);
    __m512 a[ROWS][2];
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + c) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + c + 16) : _mm512_setzero_ps();
    for (int r = 0; r < ROWS; r++) {
      a[r][0] = b0;
      a[r][1] = b1;
    }
    for (int i = 0; i < n_in; i++) {
      const __m512 w0 = _mm512_maskz_loadu_ps(m0, w + (size_t)i * ldw + c);
      const __m512 w1 = _mm512_maskz_loadu_ps(m1, w + (size_t)i * ldw + c + 16);
      for (int r = 0; r < ROWS; r++) {
        const __m512 x = _mm512_set1_ps(in[r][i * step]);
        a[r][0] = _mm512_fmadd_ps(x, w0, a[r][0]);
        a[r][1] = _mm512_fmadd_ps(x, w1, a[r][1]);
      }
    }
    for (int r = 0; r < ROWS; r++) {
      _mm512_storeu_ps(out + (size_t)r * ld + c, a[r][0]);
      _mm512_storeu_ps(out + (size_t)r * ld + c + 16, a[r][1]);
    }
  }
}

#elif SER_SIMD == 256
/* libmvec's expf on 8 lanes. */
__m256 _ZGVdN8v_expf(__m256 x);

/* Lanes i < n of 8 (a mask for _mm256_maskload_ps / _mm256_maskstore_ps). */
static inline __m256i lanes8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* As the AVX-512 version above, in 16-column steps of two 8-lane registers. */
static inline void tile_product_strided(int n_in, int cols, const float *const *in, size_t step,
                                        const float *bias, const float *w, size_t ldw,
                                        float *out, int ld) {
  for (int c = 0; c < cols; c += 16) {
    const __m256i m0 = lanes8(cols - c), m1 = lanes8(cols - c - 8);
    __m256 a[ROWS][2];
    const __m256 b0 = bias ? _mm256_maskload_ps(bias + c, m0) : _mm256_setzero_ps();
    const __m256 b1 = bias ? _mm256_maskload_ps(bias + c + 8, m1) : _mm256_setzero_ps();
    for (int r = 0; r < ROWS; r++) {
      a[r][0] = b0;
      a[r][1] = b1;
    }
    for (int i = 0; i < n_in; i++) {
      const __m256 w0 = _mm256_maskload_ps(w + (size_t)i * ldw + c, m0);
      const __m256 w1 = _mm256_maskload_ps(w + (size_t)i * ldw + c + 8, m1);
      for (int r = 0; r < ROWS; r++) {
        const __m256 x = _mm256_set1_ps(in[r][i * step]);
        a[r][0] = _mm256_fmadd_ps(x, w0, a[r][0]);
        a[r][1] = _mm256_fmadd_ps(x, w1, a[r][1]);
      }
    }
    for (int r = 0; r < ROWS; r++) {
      _mm256_storeu_ps(out + (size_t)r * ld + c, a[r][0]);
      _mm256_storeu_ps(out + (size_t)r * ld + c + 8, a[r][1]);
    }
  }
}
#endif

#if SER_SIMD
/* tile_product_strided on rows (step 1). */
static inline void tile_product(int n_in, int cols, const float *const *in, const float *bias,
                                const float *w, size_t ldw, float *out, int ld) {
  tile_product_strided(n_in, cols, in, 1, bias, w, ldw, out, ld);
}
#endif

#endif
