// engine/core/rope_freq.cpp: see rope_freq.h.
#include "engine/core/rope_freq.h"

#include <cmath>
#include <numbers>

namespace minfer {

std::vector<double> rope_inverse_frequencies(const ModelConfig& cfg) {
  const int hd = cfg.head_dim;
  std::vector<double> inv(static_cast<size_t>(hd / 2));
  for (int i = 0; i < hd / 2; ++i) inv[static_cast<size_t>(i)] = std::pow(cfg.rope_theta, -2.0 * i / hd);
  const RopeScaling& rs = cfg.rope_scaling;
  if (!rs.llama3) return inv;
  // Long wavelengths are divided by factor, short ones kept, the band between interpolated smoothly.
  const double orig = rs.original_max_position;
  const double low_wavelen = orig / rs.low_freq_factor;
  const double high_wavelen = orig / rs.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      f = f / rs.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (orig / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      f = (1.0 - smooth) * f / rs.factor + smooth * f;
    }
  }
  return inv;
}

}  // namespace minfer
